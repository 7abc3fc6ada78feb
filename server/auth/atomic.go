package auth

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path (mode 0600) through a temporary file
// in the same directory, synced, then renamed over path: readers see the
// old file or the new one, never a partial one.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FileStamp remembers which version of a file was last read: its identity,
// modification time and size. A file rewritten in place or replaced by a
// rename reads as changed. The zero value knows no version.
type FileStamp struct{ info os.FileInfo }

// Same reports whether fi is the version last recorded.
func (s FileStamp) Same(fi os.FileInfo) bool {
	return s.info != nil && os.SameFile(fi, s.info) && fi.ModTime().Equal(s.info.ModTime()) && fi.Size() == s.info.Size()
}

// Known reports whether a version was recorded.
func (s FileStamp) Known() bool { return s.info != nil }

// Set records fi (nil forgets).
func (s *FileStamp) Set(fi os.FileInfo) { s.info = fi }
