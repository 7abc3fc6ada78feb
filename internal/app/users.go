package app

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/bayeux-go/bayeux/server/auth"
)

// openUsers opens the users file. On first start, when it does not exist,
// it is created with the user admin and a random password that is written
// to the log once (the only time a password is logged); created says so.
func openUsers(path string, log *slog.Logger) (users *auth.Users, created bool, err error) {
	_, statErr := os.Stat(path)
	users, err = auth.OpenUsers(path)
	if err != nil {
		return nil, false, fmt.Errorf("users file: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		pw := rand.Text()[:16]
		if err := users.Set("admin", pw); err != nil {
			return nil, false, fmt.Errorf("users file: %w", err)
		}
		log.Warn("created the users file with user admin; change this password with 'bayeux passwd'",
			"file", path, "user", "admin", "password", pw)
		return users, true, nil
	}
	return users, false, nil
}

// Passwd implements `bayeux passwd FILE NAME`: it reads a password from
// the first line of in and adds or updates the user NAME in FILE.
func Passwd(args []string, in io.Reader, out io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: bayeux passwd FILE NAME (password on stdin)")
	}
	file, name := args[0], args[1]
	if !auth.ValidName(name) {
		return fmt.Errorf("invalid user name %q", name)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("empty password on stdin")
	}
	users, err := auth.OpenUsers(file)
	if err != nil {
		return err
	}
	existed := users.Exists(name)
	if err := users.Set(name, pw); err != nil {
		return err
	}
	if existed {
		fmt.Fprintf(out, "updated user %s in %s\n", name, file)
	} else {
		fmt.Fprintf(out, "added user %s to %s\n", name, file)
	}
	return nil
}
