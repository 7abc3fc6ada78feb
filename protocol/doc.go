// Package protocol holds the Bayeux 1.0 wire types shared by the server and
// the client: messages, advice, channel names and wildcard patterns, and the
// error strings that CometD 5+ servers emit.
//
// Decoding is strict JSON: member names match exactly, a name twice in one
// object and invalid UTF-8 are errors, and a batch can be bounded (see
// DecodeBatchLimit). The package is pure Go without I/O, so it compiles to
// WebAssembly. All
// functions are safe for concurrent use; a Message is a plain value and must
// not be mutated while another goroutine reads it.
package protocol
