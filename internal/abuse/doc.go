// Package abuse is bayeux-abuse: a suite of attacks on a Bayeux server,
// run the way an outsider would run them (HTTP and WebSocket only, on the
// real binary), each judged on what the server answered. They are the
// attacks of issue 13 ("safe on the open internet"):
//
//   - queue-flood: an anonymous subscriber that stops reading (and one
//     with the ack extension) while an anonymous publisher sends 64 MB in
//     messages at the publish size cap, then one above it. The server's
//     RSS stays bounded, the subscriber's next connect reports the loss in
//     ext.dropped (delivered + dropped = accepted), no connect reply is
//     over the reply cap (plus one message), the message over the cap is
//     refused.
//   - logout-replay: a login cookie (and an admin form token) kept across
//     a logout, replayed on /chat/, /admin/, a cookie handshake and an
//     admin form: none is logged in.
//   - slow-bodies: 300 connections sending a /login body a byte at a time
//     are cut after BAYEUX_READ_TIMEOUT (or refused at once by the
//     per-address caps), while /healthz, a handshake and a connect held
//     across the read timeout are answered normally.
//   - jsonp-cookie: callback-polling with the login cookie is refused
//     with Sec-Fetch-Site same-site or cross-site, and without the header
//     the session is anonymous and cannot post as the user.
//   - invalid-utf8: bytes that are not UTF-8 in data and ext, over JSON,
//     form, JSONP, WebSocket, the echo service and a chat message: refused
//     or replaced, never received as invalid JSON.
//   - wildcard-lurking: a user who is not an admin subscribing to
//     /chat/**, /chat/* or /** is refused (or, if accepted, shows in the
//     member list of the rooms it reads).
//   - chat-ext: a chat message's big ext reaches neither the room nor its
//     history.
//   - room-flood: room creation beyond the per-user burst and rate is
//     refused as room_rate_limited (403:room_rate_limited:channel_create_denied).
//   - big-batch: requests and a WebSocket frame of 100,000 tiny messages
//     are refused before being decoded (the server's CPU per refusal).
//   - login-guessing: 100 parallel /login POSTs and 90 parallel ext.auth
//     handshakes for one user from one address, the right password sent
//     once every wrong one is on the wire: at most the per-user-and-address
//     limit is checked (by the answers and bayeux_failed_logins_total
//     minus the login refusals of bayeux_refused_total), and the right
//     password does not get in beyond it.
//   - handshake-flood: handshakes from one address beyond the burst and
//     the per-address session cap are refused with 429 and advice.
//
// # Verdicts
//
// Each attack prints one line: PASS (the server defended itself), FAIL
// (the attack succeeded: what it got is named first) or ERROR (it could
// not be run, which proves nothing and fails the suite too), what it
// tried, what the server answered with its numbers, and how long it took.
// Then the server's RSS before, after and at its peak (sampled every
// 25 ms from /proc/PID/status). Main exits 1 unless every attack passed.
// The judging functions (judge*) take what an attack observed, so that
// tests can feed them canned answers.
//
// # Targets
//
// By default Run starts bin/bayeux on a free loopback port with a
// temporary data directory, a users file made with `bayeux passwd` and the
// few settings of quickSettings (printed), and stops it at the end. Every
// attacker then comes from a loopback address of its own (127.66.x.y), so
// that one attack's refusals by a per-address limit do not decide
// another's. With Options.URL it attacks a running server instead (only
// one you own): the limits the verdicts expect are read from the BAYEUX_*
// environment as the server reads them, the RSS needs Options.PID, and
// the attacks that log in use Options.User, which login guessing then
// locks out from this address for the login limit's window.
//
// Every attack runs under a deadline (30 s, or the read and poll timeouts
// for slow-bodies) and every loop in it is bounded; attacks run one at a
// time.
package abuse
