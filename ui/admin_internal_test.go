package ui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/bayeux-go/bayeux/internal/admin"
)

func renderDoc(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	d, err := goquery.NewDocumentFromReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAdminClientsPageEscapes(t *testing.T) {
	evil := `<script>alert(1)</script>`
	f := adminFrame{Title: "Clients", Active: "clients", User: "alice", Token: "tok"}
	v := clientsView{User: evil, Total: 2, Matched: 2, Rows: []clientRow{
		{ID: "abcdefghijklmnop", Short: "abcdefgh", User: evil, IP: "192.0.2.1", Transport: "websocket",
			Subscriptions: []string{"/chat/" + evil}, Queue: "3", Since: "1m 0s ago", LastSeen: "2s ago"},
		{ID: "svc_x", Short: "svc_x", Local: true, Transport: "local", Queue: "n/a", Since: "5s ago", LastSeen: "—"},
	}}
	d := renderDoc(t, adminClientsPage(f, v))
	if d.Find("script:not([src])").Length() != 0 {
		t.Fatal("a user-controlled string became a script element")
	}
	rows := d.Find(`table[data-testid="admin-clients"] tr[data-testid="admin-client-row"]`)
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	first := rows.First()
	if got := first.AttrOr("data-user", ""); got != evil {
		t.Errorf("data-user %q", got)
	}
	if got := strings.TrimSpace(first.Find(`td[data-label="User"]`).Text()); got != evil {
		t.Errorf("user cell %q, want the text as is", got)
	}
	form := first.Find(`form[action="/admin/clients/disconnect"]`)
	if form.AttrOr("method", "") != "post" || form.Find(`input[name="id"]`).AttrOr("value", "") != "abcdefghijklmnop" ||
		form.Find(`input[name="token"]`).AttrOr("value", "") != "tok" || form.Find(`input[name="user"]`).AttrOr("value", "") != evil {
		t.Error("the disconnect form lacks the id, the token or the filter")
	}
	if rows.Last().Find(`[data-testid="admin-disconnect"]`).Length() != 0 {
		t.Error("a local client has a disconnect button")
	}
	if cur := d.Find(`nav a[aria-current="page"]`).Text(); cur != "Clients" {
		t.Errorf("current nav entry %q", cur)
	}
	if !strings.Contains(d.Find(`[data-testid="admin-clients-count"]`).Text(), "2 of 2") {
		t.Errorf("summary %q", d.Find(`[data-testid="admin-clients-count"]`).Text())
	}
}

func TestAdminFlashOnlyFixedTexts(t *testing.T) {
	f := adminFrame{Title: "Users", Flash: flashes["user-added"]}
	d := renderDoc(t, adminUsersPage(f, usersView{}))
	if got := d.Find(`[data-testid="admin-flash"]`).Text(); got != "User added." {
		t.Errorf("flash %q", got)
	}
	if _, ok := flashes["<b>anything</b>"]; ok {
		t.Error("unexpected flash")
	}
}

func TestBuildChart(t *testing.T) {
	now := time.Now()
	var samples []admin.Sample
	for i := range 10 {
		samples = append(samples, admin.Sample{Time: now.Add(time.Duration(i-9) * 2 * time.Second),
			InRate: float64(i * 10), OutRate: 3, PublishedRate: 1})
	}
	c := buildChart(samples, now, chartSpan)
	if c.Empty || len(c.Series) != 3 {
		t.Fatalf("chart %+v", c)
	}
	// The first sample has no rate and is left out.
	if n := len(strings.Fields(c.Series[0].Points)); n != 9 {
		t.Errorf("%d points, want 9", n)
	}
	if c.YTicks[2].Label != "100" || c.Series[0].Latest != "90" {
		t.Errorf("y max %q, latest %q; want 100 and 90", c.YTicks[2].Label, c.Series[0].Latest)
	}
	d := renderDoc(t, rateChart(c))
	if d.Find(`svg polyline`).Length() != 3 || d.Find(`svg title`).Text() == "" {
		t.Error("the SVG lacks polylines or a title")
	}
	if empty := buildChart(samples[:1], now, chartSpan); !empty.Empty {
		t.Error("one sample is not empty")
	}
	// Samples older than the span are left out.
	old := []admin.Sample{{Time: now.Add(-time.Hour)}, {Time: now.Add(-time.Hour + time.Second), InRate: 1000}}
	if c := buildChart(old, now, chartSpan); c.Series[0].Points != "" || c.YTicks[2].Label != "1" {
		t.Errorf("old samples drawn: %+v", c.Series[0])
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 1, 1: 1, 1.1: 2, 2: 2, 3: 5, 7: 10, 10: 10, 11: 20, 99: 100, 101: 200, 4500: 5000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1500 * time.Millisecond: "1s", 61 * time.Second: "1m 1s", 3*time.Hour + 4*time.Minute: "3h 4m",
		50 * time.Hour: "2d 2h", -time.Second: "0s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1\u202f000", -1234567: "-1\u202f234\u202f567"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 0.25: "0.2", 9.96: "10.0", 12.4: "12"} {
		if got := fmtRate(v); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", v, got, want)
		}
	}
	if s, title := fmtAgo(time.Time{}, time.Now()); s != "—" || title != "" {
		t.Errorf("fmtAgo(zero) = %q %q", s, title)
	}
}
