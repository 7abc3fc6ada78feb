package ui

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/bayeux-go/bayeux/protocol"
)

// The view models of the admin pages: everything is formatted here, so
// that the templates only lay it out.

var errSessionUnknown = protocol.ErrSessionUnknown

// adminFrame is what every admin page shows around its content.
type adminFrame struct {
	Title  string
	Active string // nav entry: overview, clients, channels, users
	User   string
	// Token is the form token every POST form carries.
	Token string
	Flash flash
}

// flash is a one-line message at the top of a page.
type flash struct {
	Text  string
	Error bool
}

type navItem struct {
	Key, Label string
	Href       templ.SafeURL
}

var adminNav = []navItem{
	{Key: "overview", Label: "Overview", Href: "/admin/"},
	{Key: "clients", Label: "Clients", Href: "/admin/clients"},
	{Key: "channels", Label: "Channels", Href: "/admin/channels"},
	{Key: "users", Label: "Users", Href: "/admin/users"},
}

// stat is one figure of the overview.
type stat struct {
	Label, Value, Title string
	// ID names the figure for tests (data-stat).
	ID string
}

// overviewView is the overview page's live part.
type overviewView struct {
	Figures []stat
	// Transports lists sessions per transport.
	Transports []stat
	Chart      chartView
	Updated    string
}

type clientsView struct {
	User, Channel string
	Rows          []clientRow
	// Total is the number of sessions; Matched of those that pass the
	// filter; len(Rows) <= Matched when the table is cut at MaxRows.
	Total, Matched int
	QueueKnown     bool
}

func (v clientsView) Filtered() bool { return v.User != "" || v.Channel != "" }

func (v clientsView) Summary() string {
	var b strings.Builder
	switch {
	case v.Filtered():
		fmt.Fprintf(&b, "%d of %d sessions match", v.Matched, v.Total)
	case v.Total == 1:
		b.WriteString("1 session")
	default:
		fmt.Fprintf(&b, "%d sessions", v.Total)
	}
	if len(v.Rows) < v.Matched {
		fmt.Fprintf(&b, "; showing the oldest %d (filter by user or channel to see others)", len(v.Rows))
	}
	b.WriteString(".")
	return b.String()
}

type clientRow struct {
	ID, Short, User, IP, Transport string
	Subscriptions                  []string
	Queue                          string
	Since, SinceTitle              string
	LastSeen, LastSeenTitle        string
	Local                          bool
}

type channelsView struct {
	Rows []channelRow
	// Channel prefills the publish form.
	Channel string
	// Text refills the publish form after an error.
	Text    string
	MaxText int
}

type channelRow struct {
	Name        string
	Subscribers int
	Rate        string
	Total       int64
	Last        string
	LastTitle   string
	Clients     templ.SafeURL // the clients table filtered by this channel
	Publishable bool          // not a pattern
}

type usersView struct {
	Rows []userRow
	// Logins lists every user's logins, by user, newest first.
	Logins []loginRow
	// Orphans are admins without a user account.
	Orphans []string
	// Add refills the add form after an error.
	AddName string
}

type userRow struct {
	Name     string
	Admin    bool
	Fixed    bool // admin through BAYEUX_ADMINS
	Self     bool
	Sessions int
	Logins   int
}

// loginRow is one login on the Users page.
type loginRow struct {
	ID, User                string
	Created, CreatedTitle   string
	LastSeen, LastSeenTitle string
	IP, UserAgent           string
	Current                 bool // the admin's own login of this page
}

func clientsURL(channel string) templ.SafeURL {
	return templ.SafeURL("/admin/clients?" + url.Values{"channel": {channel}}.Encode())
}

// fmtRate formats a per-second rate.
func fmtRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// fmtBytes formats a byte count with a binary unit.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// fmtDuration formats a duration coarsely: "45s", "12m 5s", "3h 4m",
// "2d 5h".
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// fmtAgo formats t relative to now ("12s ago"), with the absolute time as
// the second result (for a title).
func fmtAgo(t, now time.Time) (string, string) {
	if t.IsZero() {
		return "—", ""
	}
	return fmtDuration(now.Sub(t)) + " ago", t.Format(time.RFC3339)
}

// fmtCount formats an integer with thin spaces between thousands.
func fmtCount[T int | int64 | uint32](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func shortClientID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
