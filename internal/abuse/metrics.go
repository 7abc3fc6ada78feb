package abuse

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics is what the suite reads of the server's /metrics: failed logins
// and refusals by reason.
type metrics struct {
	failedLogins float64
	refused      map[string]float64
}

// parseMetrics reads the Prometheus text format (prometheus/common's
// parser): bayeux_failed_logins_total and bayeux_refused_total{reason}.
func parseMetrics(body []byte) (*metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	m := &metrics{refused: map[string]float64{}}
	f, ok := fams["bayeux_failed_logins_total"]
	if !ok {
		return nil, fmt.Errorf("no bayeux_failed_logins_total")
	}
	for _, s := range f.GetMetric() {
		m.failedLogins += s.GetCounter().GetValue()
	}
	if f, ok := fams["bayeux_refused_total"]; ok {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "reason" {
					m.refused[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	return m, nil
}

// scrape reads the target's /metrics; nil when the target does not serve
// them (a deployment may keep /metrics private): the verdicts then rest
// on the answers alone.
func (p *peer) scrape(ctx context.Context) *metrics {
	a := p.do(ctx, http.MethodGet, "/metrics", nil, nil)
	if a.err != nil || a.status != http.StatusOK {
		return nil
	}
	m, err := parseMetrics(a.body)
	if err != nil {
		return nil
	}
	return m
}

// refusedReasons returns the refusals by reason (nil for nil metrics).
func (m *metrics) refusedReasons() map[string]float64 {
	if m == nil {
		return nil
	}
	return m.refused
}

// delta is what changed between two scrapes: failed logins and refusals
// by reason (only the reasons that moved).
type delta struct {
	failedLogins float64
	refused      map[string]float64
}

// since returns m minus before; nil when either is nil.
func (m *metrics) since(before *metrics) *delta {
	if m == nil || before == nil {
		return nil
	}
	d := &delta{failedLogins: m.failedLogins - before.failedLogins, refused: map[string]float64{}}
	for r, v := range m.refused {
		if n := v - before.refused[r]; n != 0 {
			d.refused[r] = n
		}
	}
	return d
}

// sum adds the refusals of the reasons that start with prefix.
func (d *delta) sum(prefix string) float64 {
	var n float64
	for r, v := range d.refused {
		if strings.HasPrefix(r, prefix) {
			n += v
		}
	}
	return n
}

// String lists the refusals, e.g. "refused login_user_ip +95, login_ip +3".
func (d *delta) String() string {
	if d == nil {
		return "no /metrics"
	}
	if len(d.refused) == 0 {
		return "no refusal counted"
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(d.refused)) {
		parts = append(parts, fmt.Sprintf("%s +%g", r, d.refused[r]))
	}
	return "refused " + strings.Join(parts, ", ")
}
