package abuse

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Verdict is the outcome of one attack.
type Verdict int

// Verdicts. Error is not a pass: an attack that could not be run proves
// nothing, so it fails the suite as a successful attack does.
const (
	Pass  Verdict = iota // the server defended itself
	Fail                 // the attack succeeded
	Error                // the attack could not be run
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	}
	return "ERROR"
}

// Result is one attack's line of the report: what it tried, what the
// server answered (with the numbers that matter) and the verdict.
type Result struct {
	Name    string
	Verdict Verdict
	Tried   string
	Saw     string
	Took    time.Duration
}

// WriteTo writes the result as one line.
func (r Result) WriteTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprintf(w, "%-5s %s: %s -> %s (%s)\n", r.Verdict, r.Name, r.Tried, r.Saw, r.Took.Round(10*time.Millisecond))
	return int64(n), err
}

// findings collects what an attack saw, and whether any of it means the
// attack succeeded, for its verdict.
type findings struct {
	saw    []string
	failed []string
}

// note records something the server did.
func (f *findings) note(format string, args ...any) {
	f.saw = append(f.saw, fmt.Sprintf(format, args...))
}

// fail records something that means the attack succeeded.
func (f *findings) fail(format string, args ...any) {
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}

// check fails with the message when bad holds.
func (f *findings) check(bad bool, format string, args ...any) {
	if bad {
		f.fail(format, args...)
	}
}

// result turns the findings into a Result: FAIL when anything failed,
// with the failures first.
func (f *findings) result(name, tried string) Result {
	r := Result{Name: name, Tried: tried, Verdict: Pass}
	parts := f.saw
	if len(f.failed) > 0 {
		r.Verdict = Fail
		parts = append([]string{"ATTACK SUCCEEDED: " + strings.Join(f.failed, "; ")}, f.saw...)
	}
	r.Saw = strings.Join(parts, "; ")
	if r.Saw == "" {
		r.Saw = "nothing to report"
	}
	return r
}

// errorResult is an attack that could not be run.
func errorResult(name, tried string, err error) Result {
	return Result{Name: name, Tried: tried, Verdict: Error, Saw: "could not run: " + err.Error()}
}

// plural formats n with a noun, "1 message", "3 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
