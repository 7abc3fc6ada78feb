// Package bench is bayeux-bench: a load generator for any Bayeux 1.0
// (CometD, Faye, bayeux) server over long-polling or WebSocket.
//
// # Scenarios
//
//   - fanout: Subscribers clients on one channel (<prefix>/fanout) and one
//     more client publishing Rate messages per second to it.
//   - rooms: Clients clients, Rooms rooms (<prefix>/rooms/<k>); client i
//     joins rooms (i*RoomsPerClient + j) mod Rooms for j < RoomsPerClient,
//     so every room has the same number of members; the clients publish
//     in turn (round-robin), Rate messages per second in total, each tick
//     a batch of Batch messages to the client's rooms in turn. CometD's
//     own benchmark is -clients 1000 -rooms 100 -rooms-per-client 10
//     -batch 10 -size 50.
//   - idle: Clients clients that only hold their /meta/connect; with -pid
//     the server's resident memory per client.
//   - handshake: Workers loops of handshake + disconnect (each a new
//     browser: no cookies), closed-loop, for the duration.
//
// # How it measures
//
// Every simulated client has its own connection and cookies (one browser
// each: servers bind a session to its BAYEUX_BROWSER cookie), handshakes,
// subscribes in one batch, then keeps one /meta/connect in flight,
// honouring the advice (interval, timeout; reconnect:"handshake" makes it
// handshake and subscribe again, counted as "rehandshake").
//
// Publishing is open-loop. Tick i is scheduled at start + i*Batch/Rate and
// its messages carry that time: {"seq", "pub", "ts", "pad"}. A publisher
// sends one request at a time (so its messages reach the server in order)
// with everything that is due; a late request does not move the schedule,
// so time lost anywhere (generator, network, server) shows up in the
// latency instead of lowering the load (no coordinated omission).
// send_lag_ms and publish_rtt_ms tell how much of it was the generator.
//
// Every receiver checks, per (publisher, channel), the sequence numbers it
// gets: delivered (first arrivals), duplicated, reordered (arrived after a
// later one); at the end, lost = what the publishers had accepted on the
// receiver's channels and never arrived (after at most -timeout of
// draining). Messages the server refused (publish reply successful:false
// or HTTP error) are not expected. Latency (scheduled send → receipt)
// goes into a log-linear histogram (Histogram, < 1 % error).
//
// With -pid, the server's CPU (/proc/PID/stat) and RSS (/proc/PID/status,
// sampled every 250 ms) are measured over the window; the generator's own
// CPU (getrusage) and the rest of the machine's (/proc/stat) too, with a
// warning when the generator used over 90 % of its cores or other
// processes more than 15 % of a core.
//
// # Transports
//
// Transport and Conn are the seam between the clients and the wire. The
// long-polling ones: RawLongPolling (default, a minimal HTTP/1.1 client
// that costs about half of net/http per request) and LongPolling
// (net/http, -http std). WebSocket (-transport websocket) gives every
// client its own socket (github.com/coder/websocket) and matches replies
// by message id; its deliveries are counted by the socket's reader as
// each frame arrives, so latency and ordering are read at arrival for
// both transports.
package bench
