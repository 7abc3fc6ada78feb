package ui

import (
	"errors"
	"net/http"
	"slices"

	"github.com/bayeux-go/bayeux/internal/admin"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// users serves GET /admin/users.
func (h *adminHandler) users(w http.ResponseWriter, r *http.Request, user string) {
	h.renderUsers(w, r, user, http.StatusOK, "", flash{})
}

func (h *adminHandler) renderUsers(w http.ResponseWriter, r *http.Request, user string, status int, addName string, fl flash) {
	sessions := map[string]int{}
	if l, ok := h.p.Bayeux.Engine().(server.SessionLister); ok {
		if infos, err := l.ListSessions(r.Context()); err == nil {
			for _, in := range infos {
				if in.User != "" && !in.Local {
					sessions[in.User]++
				}
			}
		}
	}
	names := h.o.Users.Names()
	admins := h.o.Admins.Names()
	v := usersView{AddName: addName}
	for _, n := range names {
		_, isAdmin := slices.BinarySearch(admins, n)
		v.Rows = append(v.Rows, userRow{
			Name: n, Admin: isAdmin, Fixed: h.o.Admins.Fixed(n), Self: n == user, Sessions: sessions[n],
		})
	}
	for _, n := range admins {
		if _, found := slices.BinarySearch(names, n); !found {
			v.Orphans = append(v.Orphans, n)
		}
	}
	f := h.frame(r, user, "Users", "users")
	if fl.Text != "" {
		f.Flash = fl
	}
	render(w, r, status, adminUsersPage(f, v))
}

// userAction serves POST /admin/users/{add,password,delete,grant,revoke}.
// Changes are written to the users file and the admins file at once and
// apply without a restart.
func (h *adminHandler) userAction(w http.ResponseWriter, r *http.Request, user string) {
	name := r.PostForm.Get("name")
	fail := func(status int, msg string) {
		addName := ""
		if r.PathValue("action") == "add" {
			addName = name
		}
		h.renderUsers(w, r, user, status, addName, flash{Text: msg, Error: true})
	}
	log := h.p.Log.With("admin", user, "user", name)
	switch r.PathValue("action") {
	case "add":
		if !auth.ValidName(name) {
			fail(http.StatusBadRequest, "A user name has 1 to 64 bytes, without spaces, colons or control characters.")
			return
		}
		if h.o.Users.Exists(name) {
			fail(http.StatusConflict, "That user exists already; set a new password in their row instead.")
			return
		}
		if !h.setPassword(name, r.PostForm.Get("password"), fail) {
			return
		}
		log.Info("admin: user added")
		if r.PostForm.Get("admin") != "" {
			if err := h.o.Admins.Grant(name); err != nil {
				log.Error("admin: grant", "err", err)
				fail(http.StatusInternalServerError, "The user was added, but admin rights could not be granted: "+err.Error())
				return
			}
			log.Info("admin: admin rights granted")
		}
		redirectMsg(w, r, "/admin/users", nil, "user-added")
	case "password":
		if !h.o.Users.Exists(name) {
			fail(http.StatusNotFound, "No such user.")
			return
		}
		if !h.setPassword(name, r.PostForm.Get("password"), fail) {
			return
		}
		log.Info("admin: password changed")
		redirectMsg(w, r, "/admin/users", nil, "password-set")
	case "delete":
		if name == user {
			fail(http.StatusBadRequest, "You cannot delete yourself.")
			return
		}
		if err := h.o.Users.Delete(name); errors.Is(err, auth.ErrNoUser) {
			fail(http.StatusNotFound, "No such user.")
			return
		} else if err != nil {
			log.Error("admin: delete user", "err", err)
			fail(http.StatusInternalServerError, "Could not delete the user: "+err.Error())
			return
		}
		// A later user of the same name must not inherit admin rights.
		if err := h.o.Admins.Revoke(name); err != nil && !errors.Is(err, admin.ErrNotAdmin) && !errors.Is(err, admin.ErrFixedAdmin) {
			log.Error("admin: revoke after delete", "err", err)
		}
		n, err := h.p.Bayeux.DisconnectWhere(r.Context(), func(in *server.SessionInfo) bool { return in.User == name })
		if err != nil {
			log.Error("admin: ending the deleted user's sessions", "err", err)
		}
		log.Info("admin: user deleted", "sessions", n)
		redirectMsg(w, r, "/admin/users", nil, "user-deleted")
	case "grant":
		if !h.o.Users.Exists(name) {
			fail(http.StatusNotFound, "No such user.")
			return
		}
		if err := h.o.Admins.Grant(name); err != nil {
			log.Error("admin: grant", "err", err)
			fail(http.StatusInternalServerError, "Could not grant admin rights: "+err.Error())
			return
		}
		log.Info("admin: admin rights granted")
		redirectMsg(w, r, "/admin/users", nil, "admin-granted")
	case "revoke":
		if name == user {
			fail(http.StatusBadRequest, "You cannot revoke your own admin rights; ask another admin.")
			return
		}
		switch err := h.o.Admins.Revoke(name); {
		case errors.Is(err, admin.ErrFixedAdmin):
			fail(http.StatusBadRequest, name+" is an admin through BAYEUX_ADMINS; change the environment to revoke.")
			return
		case errors.Is(err, admin.ErrNotAdmin):
			fail(http.StatusBadRequest, name+" is not an admin.")
			return
		case err != nil:
			log.Error("admin: revoke", "err", err)
			fail(http.StatusInternalServerError, "Could not revoke admin rights: "+err.Error())
			return
		}
		log.Info("admin: admin rights revoked")
		redirectMsg(w, r, "/admin/users", nil, "admin-revoked")
	default:
		http.NotFound(w, r)
	}
}

// setPassword sets name's password, answering with fail when it is
// refused. The password is never logged.
func (h *adminHandler) setPassword(name, password string, fail func(int, string)) bool {
	switch {
	case password == "":
		fail(http.StatusBadRequest, "Enter a password.")
		return false
	case len(password) > 72:
		fail(http.StatusBadRequest, "A password has at most 72 bytes (bcrypt's limit).")
		return false
	}
	if err := h.o.Users.Set(name, password); err != nil {
		h.p.Log.Error("admin: set password", "user", name, "err", err)
		fail(http.StatusInternalServerError, "Could not save the users file.")
		return false
	}
	return true
}
