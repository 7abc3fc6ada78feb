package ui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/internal/admin"
)

// chartView is the message-rate chart as SVG geometry (viewBox units).
type chartView struct {
	ViewBox string
	// Plot area.
	Left, Right, Top, Bottom string
	Series                   []chartSeries
	YTicks, XTicks           []chartTick
	// Empty is true until two samples exist.
	Empty bool
	// Summary describes the chart for screen readers.
	Summary string
}

type chartSeries struct {
	Name, Class string
	// Points is the polyline's points attribute.
	Points string
	// Latest is the newest value, formatted.
	Latest string
}

type chartTick struct {
	// X, Y position the label; the grid line runs at Y (y ticks) or X
	// (x ticks).
	X, Y, Label string
	// Anchor is the label's text-anchor.
	Anchor string
}

const (
	chartW, chartH                      = 640.0, 200.0
	chartLeft, chartRight               = 44.0, 632.0
	chartTop, chartBottom               = 10.0, 176.0
	chartSpan             time.Duration = 10 * time.Minute
)

func fnum(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// buildChart lays out the rates of samples (oldest first) over the last
// span before now: one polyline per series, y from zero to a round
// maximum.
func buildChart(samples []admin.Sample, now time.Time, span time.Duration) chartView {
	c := chartView{
		ViewBox: "0 0 " + fnum(chartW) + " " + fnum(chartH),
		Left:    fnum(chartLeft), Right: fnum(chartRight), Top: fnum(chartTop), Bottom: fnum(chartBottom),
	}
	// The first sample has no rate (nothing before it).
	if len(samples) > 0 {
		samples = samples[1:]
	}
	start := now.Add(-span)
	for len(samples) > 0 && samples[0].Time.Before(start) {
		samples = samples[1:]
	}
	type series struct {
		name, class string
		value       func(admin.Sample) float64
	}
	all := []series{
		{"in", "s-in", func(s admin.Sample) float64 { return s.InRate }},
		{"out", "s-out", func(s admin.Sample) float64 { return s.OutRate }},
		{"published", "s-pub", func(s admin.Sample) float64 { return s.PublishedRate }},
	}
	max := 0.0
	for _, s := range samples {
		max = math.Max(max, math.Max(s.InRate, math.Max(s.OutRate, s.PublishedRate)))
	}
	top := niceCeil(max)
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		y := chartBottom - (chartBottom-chartTop)*float64(i)/2
		c.YTicks = append(c.YTicks, chartTick{X: fnum(chartLeft - 4), Y: fnum(y), Label: strconv.FormatFloat(v, 'f', -1, 64), Anchor: "end"})
	}
	for _, m := range []int{10, 5, 0} {
		x := chartLeft + (chartRight-chartLeft)*(1-float64(m)*float64(time.Minute)/float64(span))
		label, anchor := "now", "end"
		if m > 0 {
			label, anchor = "−"+strconv.Itoa(m)+" min", "middle"
		}
		if x <= chartLeft {
			anchor = "start"
		}
		c.XTicks = append(c.XTicks, chartTick{X: fnum(x), Y: fnum(chartH - 6), Label: label, Anchor: anchor})
	}
	c.Empty = len(samples) < 2
	var summary []string
	for _, se := range all {
		var pts strings.Builder
		for _, s := range samples {
			x := chartLeft + (chartRight-chartLeft)*float64(s.Time.Sub(start))/float64(span)
			y := chartBottom - (chartBottom-chartTop)*se.value(s)/top
			if pts.Len() > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(fnum(math.Max(chartLeft, x)) + "," + fnum(y))
		}
		latest := "0"
		if len(samples) > 0 {
			latest = fmtRate(se.value(samples[len(samples)-1]))
		}
		c.Series = append(c.Series, chartSeries{Name: se.name, Class: se.class, Points: pts.String(), Latest: latest})
		summary = append(summary, se.name+" "+latest+"/s")
	}
	c.Summary = "Messages per second over the last " + strconv.Itoa(int(span/time.Minute)) +
		" minutes; now " + strings.Join(summary, ", ") + "."
	return c
}

// niceCeil returns the smallest of 1, 2, 5 times a power of ten that is at
// least v (and at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
