package admin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/bayeux-go/bayeux/server/auth"
)

// Errors of Admins.Grant and Admins.Revoke.
var (
	ErrFixedAdmin = errors.New("admin: listed in BAYEUX_ADMINS; change the environment to revoke")
	ErrNotAdmin   = errors.New("admin: not an admin")
	ErrBadName    = errors.New("admin: invalid user name")
)

// Admins decides who may use /admin/: the fixed names (BAYEUX_ADMINS) and
// the names in the admins file (one per line; blank lines and lines
// starting with # are ignored). The file is written atomically (temporary
// file and rename) and reread when another writer changed it, so grants
// apply without a restart. Its methods are safe for concurrent use.
type Admins struct {
	path  string
	fixed map[string]bool

	mu    sync.Mutex
	names map[string]bool // from the file
	stamp auth.FileStamp  // the version of the file names came from
}

// OpenAdmins reads the admins file at path (a missing file lists nobody;
// it is created on the first Grant). fixed are the admins from the
// environment, which Revoke refuses to remove.
func OpenAdmins(path string, fixed []string) (*Admins, error) {
	a := &Admins{path: path, fixed: map[string]bool{}, names: map[string]bool{}}
	for _, n := range fixed {
		if n = strings.TrimSpace(n); n != "" {
			a.fixed[n] = true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reloadLocked(); err != nil {
		return nil, err
	}
	return a, nil
}

// Path returns the admins file's path.
func (a *Admins) Path() string { return a.path }

// reloadLocked rereads the file when it changed. When it cannot be read
// it grants nobody (fail closed) until it can.
func (a *Admins) reloadLocked() error {
	fi, err := os.Stat(a.path)
	if errors.Is(err, os.ErrNotExist) {
		a.names = map[string]bool{}
		a.stamp.Set(nil)
		return nil
	}
	if err != nil {
		a.names = map[string]bool{}
		a.stamp.Set(nil)
		return err
	}
	if a.stamp.Same(fi) {
		return nil
	}
	b, err := os.ReadFile(a.path)
	if err != nil {
		a.names = map[string]bool{}
		a.stamp.Set(nil)
		return err
	}
	a.names = parseAdmins(b)
	a.stamp.Set(fi)
	return nil
}

// parseAdmins reads one name per line. Lines that are not a valid user
// name are ignored: they cannot name a user, so they grant nothing.
func parseAdmins(b []byte) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || !auth.ValidName(line) {
			continue
		}
		names[line] = true
	}
	return names
}

// IsAdmin reports whether name may use /admin/.
func (a *Admins) IsAdmin(name string) bool {
	if name == "" {
		return false
	}
	if a.fixed[name] {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.reloadLocked()
	return a.names[name]
}

// Fixed reports whether name is an admin from the environment.
func (a *Admins) Fixed(name string) bool { return a.fixed[name] }

// Names lists every admin (environment and file), sorted.
func (a *Admins) Names() []string {
	a.mu.Lock()
	_ = a.reloadLocked()
	out := make([]string, 0, len(a.fixed)+len(a.names))
	for n := range a.names {
		out = append(out, n)
	}
	a.mu.Unlock()
	for n := range a.fixed {
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Grant makes name an admin by adding it to the file. Granting an admin
// again is not an error.
func (a *Admins) Grant(name string) error {
	if !auth.ValidName(name) {
		return ErrBadName
	}
	if a.fixed[name] {
		return nil
	}
	return a.update(func(m map[string]bool) error {
		m[name] = true
		return nil
	})
}

// Revoke removes name from the file. It fails with ErrFixedAdmin for an
// admin from the environment and with ErrNotAdmin when name is no admin.
func (a *Admins) Revoke(name string) error {
	if a.fixed[name] {
		return ErrFixedAdmin
	}
	return a.update(func(m map[string]bool) error {
		if !m[name] {
			return ErrNotAdmin
		}
		delete(m, name)
		return nil
	})
}

func (a *Admins) update(change func(map[string]bool) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reloadLocked(); err != nil {
		return err
	}
	next := make(map[string]bool, len(a.names)+1)
	for n := range a.names {
		next[n] = true
	}
	if err := change(next); err != nil {
		return err
	}
	names := make([]string, 0, len(next))
	for n := range next {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString("# bayeux admins (besides BAYEUX_ADMINS), one user name per line; edited by /admin/users\n")
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	if err := auth.WriteFileAtomic(a.path, b.Bytes()); err != nil {
		return fmt.Errorf("admin: writing %s: %w", a.path, err)
	}
	a.names = next
	if fi, err := os.Stat(a.path); err == nil {
		a.stamp.Set(fi)
	}
	return nil
}
