package protocol_test

import (
	"fmt"

	"github.com/bayeux-go/bayeux/protocol"
)

// A session limited to /chat/* may subscribe to a room or to /chat/*, but
// not to /chat/**, which also matches deeper channels.
func ExampleCovers() {
	for _, sub := range []string{"/chat/support", "/chat/*", "/chat/**", "/**"} {
		fmt.Println(sub, protocol.Covers("/chat/*", sub))
	}
	// Output:
	// /chat/support true
	// /chat/* true
	// /chat/** false
	// /** false
}
