// Package admin holds what the operator's view needs beyond the server's
// own API: a Recorder that follows the server's events and counters
// (message rates, per-channel activity, each session's transport and last
// activity), the admins file that grants /admin/ at runtime, the
// Prometheus /metrics handler and the /readyz check. The pages themselves
// are in package ui.
//
// Nothing here is on the server's publish path except Recorder.OnEvent and
// the Authorize wrapper, which take no global lock.
package admin
