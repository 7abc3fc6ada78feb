package protocol

import (
	"errors"
	"strconv"
	"strings"
)

// Error is a Bayeux error: code ":" args ":" message, for example
// "402::session_unknown" or "403:denied_by_security_policy:publish_denied".
type Error struct {
	Code    int
	Args    []string
	Message string
}

// Error formats e as a Bayeux error string.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Code))
	b.WriteByte(':')
	b.WriteString(strings.Join(e.Args, ","))
	b.WriteByte(':')
	b.WriteString(e.Message)
	return b.String()
}

// Is matches errors with the same code and message, whatever the args.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message
}

// WithArgs returns a copy of e with args set.
func (e *Error) WithArgs(args ...string) *Error {
	return &Error{Code: e.Code, Args: args, Message: e.Message}
}

// ParseError parses a Bayeux error string.
func ParseError(s string) (*Error, error) {
	code, rest, ok := strings.Cut(s, ":")
	if !ok || len(code) != 3 {
		return nil, errors.New("bayeux: malformed error string")
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 {
		return nil, errors.New("bayeux: malformed error code")
	}
	args, msg, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("bayeux: malformed error string")
	}
	e := &Error{Code: n, Message: msg}
	if args != "" {
		e.Args = strings.Split(args, ",")
	}
	return e, nil
}

// ErrorString formats any error as a Bayeux error string: an *Error as
// itself, anything else as 403 with the error text as message.
func ErrorString(err error) string {
	if err == nil {
		return ""
	}
	var be *Error
	if errors.As(err, &be) {
		return be.Error()
	}
	return "403::" + strings.ReplaceAll(err.Error(), ":", " ")
}

// Errors the server emits, in the form CometD 5+ uses.
var (
	ErrSessionUnknown        = &Error{Code: 402, Message: "session_unknown"}
	ErrHandshakeDenied       = &Error{Code: 403, Message: "handshake_denied"}
	ErrHandshakeNotAlone     = &Error{Code: 400, Message: "handshake_not_alone"}
	ErrVersionMissing        = &Error{Code: 400, Message: "version_missing"}
	ErrNoTransport           = &Error{Code: 405, Message: "no_transport"}
	ErrChannelMissing        = &Error{Code: 400, Message: "channel_missing"}
	ErrChannelInvalid        = &Error{Code: 405, Message: "channel_invalid"}
	ErrMessageIDInvalid      = &Error{Code: 405, Message: "message_id_invalid"}
	ErrDataMissing           = &Error{Code: 400, Message: "data_missing"}
	ErrConnectionTypeInvalid = &Error{Code: 405, Message: "connection_type_invalid"}
	ErrConnectNotAlone       = &Error{Code: 400, Message: "connect_duplicated"}
	ErrSubscriptionMissing   = &Error{Code: 403, Message: "subscription_missing"}
	ErrSubscriptionInvalid   = &Error{Code: 403, Message: "subscription_invalid"}
	ErrSubscriptionLimit     = &Error{Code: 403, Message: "subscription_limit"}
	ErrSubscribeDenied       = &Error{Code: 403, Args: []string{"denied_by_security_policy"}, Message: "subscribe_denied"}
	ErrPublishDenied         = &Error{Code: 403, Args: []string{"denied_by_security_policy"}, Message: "publish_denied"}
	ErrMessageDeleted        = &Error{Code: 404, Message: "message_deleted"}
	ErrServiceUnknown        = &Error{Code: 404, Message: "service_unknown"}
	ErrUnknownMeta           = &Error{Code: 404, Message: "meta_channel_unknown"}
	ErrServerError           = &Error{Code: 500, Message: "server_error"}
	ErrOverloaded            = &Error{Code: 503, Message: "overloaded"}
	// ErrPublishTooLarge refuses a published message over the server's
	// size limit (its argument).
	ErrPublishTooLarge = &Error{Code: 413, Message: "publish_too_large"}
	// ErrTooManySessions refuses a handshake from an address that holds
	// as many sessions as allowed; its advice says when to try again.
	ErrTooManySessions = &Error{Code: 429, Message: "too_many_sessions"}
	// ErrTooManyHandshakes refuses a handshake from an address over its
	// handshake rate; its advice says when to try again.
	ErrTooManyHandshakes = &Error{Code: 429, Message: "too_many_handshakes"}
	// ErrCreateDenied refuses a subscription to a channel that does not
	// exist and may not be created; ErrChannelCreateDenied the same for
	// a publish. Their argument is the reason (CometD's).
	ErrCreateDenied        = &Error{Code: 403, Message: "create_denied"}
	ErrChannelCreateDenied = &Error{Code: 403, Message: "channel_create_denied"}
)
