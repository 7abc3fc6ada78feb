package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the cost of new password hashes.
const BcryptCost = 10

// ErrNoUser is returned for operations on a user that does not exist.
var ErrNoUser = errors.New("auth: no such user")

// Users is a users file in htpasswd format ("name:hash" per line) with
// bcrypt hashes ($2a$, $2b$, $2y$: `htpasswd -B` compatible). Changes are
// written atomically (temporary file, then rename), and a file changed by
// another process is reloaded on the next check, so edits apply without a
// restart.
type Users struct {
	path string

	mu     sync.RWMutex
	hashes map[string][]byte
	stamp  FileStamp // the version of the file hashes came from
}

// OpenUsers reads the users file at path. A missing file is an empty set
// of users; it is created on the first Set.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, hashes: map[string][]byte{}}
	if err := u.reload(true); err != nil {
		return nil, err
	}
	return u, nil
}

// Path returns the file's path.
func (u *Users) Path() string { return u.path }

// ValidName reports whether name can be a user name: 1 to 64 bytes, no
// colon, no whitespace or control characters.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// reload rereads the file if it changed since the last read.
func (u *Users) reload(force bool) error {
	fi, err := os.Stat(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.mu.Lock()
		if u.stamp.Known() || force {
			u.hashes = map[string][]byte{}
			u.stamp.Set(nil)
		}
		u.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	u.mu.RLock()
	same := u.stamp.Same(fi)
	u.mu.RUnlock()
	if same && !force {
		return nil
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		return err
	}
	hashes, err := parseHtpasswd(b)
	if err != nil {
		return fmt.Errorf("%s: %w", u.path, err)
	}
	u.mu.Lock()
	u.hashes = hashes
	u.stamp.Set(fi)
	u.mu.Unlock()
	return nil
}

func parseHtpasswd(b []byte) (map[string][]byte, error) {
	hashes := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || !ValidName(name) {
			return nil, fmt.Errorf("line %d: not name:hash", n)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("line %d: user %s: only bcrypt hashes are supported (htpasswd -B)", n, name)
		}
		hashes[name] = []byte(hash)
	}
	return hashes, sc.Err()
}

// dummyHash makes checks of unknown users cost as much as known ones.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), BcryptCost)

// Check reports whether password is right for name. It takes the same
// time whether or not the user exists.
func (u *Users) Check(name, password string) bool {
	if err := u.reload(false); err != nil {
		return false
	}
	u.mu.RLock()
	hash, ok := u.hashes[name]
	u.mu.RUnlock()
	if !ok {
		hash = dummyHash
	}
	// htpasswd writes $2y$; Go's bcrypt reads $2a$/$2b$ and $2y$ alike.
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	return ok && err == nil
}

// Exists reports whether the user exists.
func (u *Users) Exists(name string) bool {
	_ = u.reload(false)
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.hashes[name]
	return ok
}

// Names lists the users, sorted.
func (u *Users) Names() []string {
	_ = u.reload(false)
	u.mu.RLock()
	defer u.mu.RUnlock()
	names := make([]string, 0, len(u.hashes))
	for n := range u.hashes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Set adds the user or changes its password, and saves the file.
func (u *Users) Set(name, password string) error {
	if !ValidName(name) {
		return fmt.Errorf("auth: invalid user name %q", name)
	}
	if password == "" {
		return errors.New("auth: empty password")
	}
	if len(password) > 72 {
		return errors.New("auth: password longer than 72 bytes")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return err
	}
	return u.update(func(m map[string][]byte) error {
		m[name] = hash
		return nil
	})
}

// Delete removes the user and saves the file.
func (u *Users) Delete(name string) error {
	return u.update(func(m map[string][]byte) error {
		if _, ok := m[name]; !ok {
			return ErrNoUser
		}
		delete(m, name)
		return nil
	})
}

func (u *Users) update(change func(map[string][]byte) error) error {
	if err := u.reload(false); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	next := make(map[string][]byte, len(u.hashes)+1)
	for k, v := range u.hashes {
		next[k] = v
	}
	if err := change(next); err != nil {
		return err
	}
	if err := WriteFileAtomic(u.path, formatHtpasswd(next)); err != nil {
		return err
	}
	u.hashes = next
	if fi, err := os.Stat(u.path); err == nil {
		u.stamp.Set(fi)
	}
	return nil
}

func formatHtpasswd(m map[string][]byte) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.Write(m[n])
		b.WriteByte('\n')
	}
	return b.Bytes()
}
