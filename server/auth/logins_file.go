package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// FileLoginStore keeps logins in memory and, with a path, in a JSON file
// that survives restarts. A new or ended login is written at once (a
// logout must not come back after a crash); LastSeen changes are written
// with the next write or by Flush, which the owner calls now and then and
// at Close. Expired logins are dropped when the file is read and written.
// The file is written atomically (WriteFileAtomic, mode 0600). One process
// owns the file. Safe for concurrent use.
type FileLoginStore struct {
	path string
	lim  LoginLimits
	now  func() time.Time

	mu     sync.Mutex
	logins map[string]Login
	byUser map[string]map[string]struct{} // user -> IDs of their logins
	dirty  bool                           // LastSeen changed since the last write
	ver    uint64                         // counts changes

	wmu     sync.Mutex // orders writes
	written uint64     // ver of the last write
}

// OpenFileLogins reads the logins kept at path (a missing file holds
// none; it is created on the first login). With path "" the logins are
// kept in memory only.
func OpenFileLogins(path string, lim LoginLimits) (*FileLoginStore, error) {
	s := &FileLoginStore{path: path, lim: lim.WithDefaults(), now: time.Now, logins: map[string]Login{}, byUser: map[string]map[string]struct{}{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var f loginsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	now := s.now()
	for _, l := range f.Logins {
		if l.ID != "" && ValidName(l.User) && !s.lim.Expired(l, now) {
			s.putLocked(l)
		}
	}
	return s, nil
}

// loginsFile is the file's format.
type loginsFile struct {
	Logins []Login `json:"logins"`
}

// Limits returns the limits in force.
func (s *FileLoginStore) Limits() LoginLimits { return s.lim }

// Add implements LoginStore.
func (s *FileLoginStore) Add(_ context.Context, l Login) error {
	l.UserAgent = CleanUserAgent(l.UserAgent)
	s.mu.Lock()
	s.putLocked(l)
	// Keep PerUser logins of the user: drop the ones seen least recently.
	mine := s.userLocked(l.User)
	for len(mine) > s.lim.PerUser {
		oldest := slices.MinFunc(mine, func(a, b Login) int { return a.LastSeen.Compare(b.LastSeen) })
		s.dropLocked(oldest.ID)
		mine = slices.DeleteFunc(mine, func(x Login) bool { return x.ID == oldest.ID })
	}
	s.ver++
	s.mu.Unlock()
	return s.save()
}

// Get implements LoginStore.
func (s *FileLoginStore) Get(_ context.Context, user, id string) (Login, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logins[id]
	if !ok || l.User != user {
		return Login{}, false, nil
	}
	if s.lim.Expired(l, s.now()) {
		s.dropLocked(id)
		s.dirty = true
		return Login{}, false, nil
	}
	return l, true, nil
}

// Seen implements LoginStore.
func (s *FileLoginStore) Seen(_ context.Context, user, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.logins[id]; ok && l.User == user && at.After(l.LastSeen) {
		l.LastSeen = at
		s.logins[id] = l
		s.dirty = true
	}
	return nil
}

// Remove implements LoginStore.
func (s *FileLoginStore) Remove(_ context.Context, user, id string) (Login, bool, error) {
	s.mu.Lock()
	l, ok := s.logins[id]
	ok = ok && l.User == user
	if ok {
		s.dropLocked(id)
		s.ver++
	}
	s.mu.Unlock()
	if !ok {
		return Login{}, false, nil
	}
	return l, true, s.save()
}

// RemoveUser implements LoginStore.
func (s *FileLoginStore) RemoveUser(_ context.Context, user, except string) ([]Login, error) {
	s.mu.Lock()
	var gone []Login
	for _, l := range s.userLocked(user) {
		if l.ID != except {
			s.dropLocked(l.ID)
			gone = append(gone, l)
		}
	}
	if len(gone) > 0 {
		s.ver++
	}
	s.mu.Unlock()
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, s.save()
}

// List implements LoginStore.
func (s *FileLoginStore) List(_ context.Context, user string) ([]Login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Login
	for _, l := range s.userLocked(user) {
		if !s.lim.Expired(l, now) {
			out = append(out, l)
		}
	}
	SortLogins(out)
	return out, nil
}

// userLocked returns the logins of user (s.mu held).
func (s *FileLoginStore) userLocked(user string) []Login {
	ids := s.byUser[user]
	out := make([]Login, 0, len(ids))
	for id := range ids {
		out = append(out, s.logins[id])
	}
	return out
}

// putLocked stores a new login (s.mu held).
func (s *FileLoginStore) putLocked(l Login) {
	s.logins[l.ID] = l
	ids := s.byUser[l.User]
	if ids == nil {
		ids = map[string]struct{}{}
		s.byUser[l.User] = ids
	}
	ids[l.ID] = struct{}{}
}

// dropLocked forgets login id (s.mu held).
func (s *FileLoginStore) dropLocked(id string) {
	l, ok := s.logins[id]
	if !ok {
		return
	}
	delete(s.logins, id)
	if ids := s.byUser[l.User]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(s.byUser, l.User)
		}
	}
}

// Flush writes LastSeen changes (and drops expired logins) if there are
// any; call it now and then.
func (s *FileLoginStore) Flush() error {
	s.mu.Lock()
	if s.dirty {
		s.ver++
	}
	s.mu.Unlock()
	return s.save()
}

// Close writes what Flush would.
func (s *FileLoginStore) Close() error { return s.Flush() }

// save writes the current logins unless a write of this version or a
// newer one happened already.
func (s *FileLoginStore) save() error {
	if s.path == "" {
		s.mu.Lock()
		s.dirty = false
		s.mu.Unlock()
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	ver := s.ver
	if ver == s.written {
		s.mu.Unlock()
		return nil
	}
	now := s.now()
	f := loginsFile{Logins: make([]Login, 0, len(s.logins))}
	for id, l := range s.logins {
		if s.lim.Expired(l, now) {
			s.dropLocked(id)
			continue
		}
		f.Logins = append(f.Logins, l)
	}
	s.dirty = false
	s.mu.Unlock()
	SortLogins(f.Logins)
	b, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(s.path, append(b, '\n')); err != nil {
		s.mu.Lock()
		s.dirty = true // try again with the next write
		s.mu.Unlock()
		return err
	}
	s.written = ver
	return nil
}

var _ LoginStore = (*FileLoginStore)(nil)
