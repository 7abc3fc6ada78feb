package abuse_test

import (
	"os"

	"github.com/bayeux-go/bayeux/internal/abuse"
)

// A result is one line of the report.
func ExampleResult_WriteTo() {
	r := abuse.Result{
		Name:    "logout-replay",
		Verdict: abuse.Pass,
		Tried:   "log in, log out, replay the cookie on /chat/",
		Saw:     "replayed on /chat/: HTTP 303 to /login",
	}
	r.WriteTo(os.Stdout)
	// Output:
	// PASS  logout-replay: log in, log out, replay the cookie on /chat/ -> replayed on /chat/: HTTP 303 to /login (0s)
}
