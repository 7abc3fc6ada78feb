package ui

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

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
	now := time.Now()
	current := currentLogin(r).ID
	for _, n := range names {
		_, isAdmin := slices.BinarySearch(admins, n)
		logins, err := h.p.Logins.Store.List(r.Context(), n)
		if err != nil {
			h.p.Log.Error("admin: listing logins", "user", n, "err", err)
		}
		v.Rows = append(v.Rows, userRow{
			Name: n, Admin: isAdmin, Fixed: h.o.Admins.Fixed(n), Self: n == user, Sessions: sessions[n], Logins: len(logins),
		})
		for _, l := range logins {
			row := loginRow{ID: l.ID, User: n, IP: l.IP, UserAgent: l.UserAgent, Current: l.ID == current}
			row.Created, row.CreatedTitle = fmtAgo(l.Created, now)
			row.LastSeen, row.LastSeenTitle = fmtAgo(l.LastSeen, now)
			v.Logins = append(v.Logins, row)
		}
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

// userAction serves POST
// /admin/users/{add,password,delete,grant,revoke,logout,logout-all}.
// Changes are written to the users file and the admins file at once and
// apply without a restart. A new password or a deletion ends every login
// and Bayeux session of the user (but the admin's own current login when
// they change their own password); logout ends one login (name, id) and
// logout-all every login of a user, with their sessions.
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
		except := ""
		if name == user {
			except = currentLogin(r).ID // stay logged in here
		}
		logins, sessions, err := h.p.EndLogins(context.WithoutCancel(r.Context()), name, except)
		if err != nil {
			log.Error("admin: ending the user's logins after a password change", "err", err)
			fail(http.StatusInternalServerError, "The password was changed, but the user's logins could not all be ended: "+err.Error())
			return
		}
		log.Info("admin: password changed", "logins", logins, "sessions", sessions)
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
		logins, sessions, err := h.p.EndLogins(context.WithoutCancel(r.Context()), name, "")
		if err != nil {
			// The user is gone, so their logins no longer count anyway.
			log.Error("admin: ending the deleted user's logins and sessions", "err", err)
		}
		log.Info("admin: user deleted", "logins", logins, "sessions", sessions)
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
	case "logout":
		id := r.PostForm.Get("id")
		ok, sessions, err := h.p.EndLogin(context.WithoutCancel(r.Context()), name, id)
		if err != nil {
			log.Error("admin: end login", "err", err)
			fail(http.StatusInternalServerError, "Could not end the login: "+err.Error())
			return
		}
		if !ok {
			redirectMsg(w, r, "/admin/users", nil, "login-gone")
			return
		}
		log.Info("admin: login ended", "login", id, "sessions", sessions)
		redirectMsg(w, r, "/admin/users", nil, "login-ended")
	case "logout-all":
		logins, sessions, err := h.p.EndLogins(context.WithoutCancel(r.Context()), name, "")
		if err != nil {
			log.Error("admin: end logins", "err", err)
			fail(http.StatusInternalServerError, "Could not end the logins: "+err.Error())
			return
		}
		log.Info("admin: all logins ended", "logins", logins, "sessions", sessions)
		redirectMsg(w, r, "/admin/users", nil, "logins-ended")
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
