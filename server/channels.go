package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// ChannelRule turns history and presence on for the channels that match
// Pattern (see Options.Channels).
type ChannelRule struct {
	// Pattern is a channel name or a wildcard pattern (/chat/*,
	// /chat/**). /meta/**, /service/** and /presence/** never match.
	Pattern string
	// History is how many messages of each matching channel are kept
	// (0: no history). Each channel's history is also bounded by
	// Options.HistoryChannelBytes, and the channels with a history by
	// Options.MaxHistoryChannels.
	History int
	// HistoryTTL is how long a message is kept (0: no age limit).
	HistoryTTL time.Duration
	// Presence publishes the users subscribed to each matching channel on
	// PresencePrefix+channel whenever they change.
	Presence bool
}

// PresencePrefix starts the channel on which a channel's presence is
// published: the presence of /chat/demo is on /presence/chat/demo.
const PresencePrefix = "/presence"

// HistoryPolicy is how an engine keeps one channel's history.
type HistoryPolicy struct {
	// MaxLen is how many messages are kept.
	MaxLen int
	// MaxAge is how long a message is kept (0: no limit).
	MaxAge time.Duration
	// MaxBytes bounds the history's messages in bytes (0: no limit); the
	// newest message is always kept.
	MaxBytes int64
}

// ParseChannelRules parses rules written as "PATTERN:OPTION,OPTION;..."
// (the format of BAYEUX_CHANNELS): options are history=N (messages
// kept), ttl=DURATION (how long) and presence. Rules are separated by ';'
// or white space; the first rule that matches a channel applies. For
// example "/chat/**:history=10000,presence;/news/*:history=100,ttl=24h".
func ParseChannelRules(s string) ([]ChannelRule, error) {
	var rules []ChannelRule
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\t' || r == '\n' }) {
		pattern, opts, ok := strings.Cut(part, ":")
		if !ok || opts == "" {
			return nil, fmt.Errorf("channel rule %q: want PATTERN:OPTION,... (history=N, ttl=DURATION, presence)", part)
		}
		r := ChannelRule{Pattern: pattern}
		for _, o := range strings.Split(opts, ",") {
			k, v, hasValue := strings.Cut(strings.TrimSpace(o), "=")
			var err error
			switch {
			case k == "presence" && !hasValue:
				r.Presence = true
			case k == "history":
				r.History, err = strconv.Atoi(v)
				if err == nil && r.History <= 0 {
					err = errors.New("must be positive")
				}
			case k == "ttl":
				r.HistoryTTL, err = time.ParseDuration(v)
				if err == nil && r.HistoryTTL <= 0 {
					err = errors.New("must be positive")
				}
			default:
				err = errors.New("unknown option (history=N, ttl=DURATION, presence)")
			}
			if err != nil {
				return nil, fmt.Errorf("channel rule %q: %s: %w", part, o, err)
			}
		}
		if err := r.validate(); err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (r ChannelRule) validate() error {
	if err := protocol.ValidatePattern(r.Pattern); err != nil {
		return fmt.Errorf("channel rule %q: %w", r.Pattern, err)
	}
	if r.HistoryTTL > 0 && r.History <= 0 {
		return fmt.Errorf("channel rule %q: ttl without history", r.Pattern)
	}
	if r.History < 0 || r.HistoryTTL < 0 {
		return fmt.Errorf("channel rule %q: negative history", r.Pattern)
	}
	return nil
}

// String formats r as ParseChannelRules reads it.
func (r ChannelRule) String() string {
	var opts []string
	if r.History > 0 {
		opts = append(opts, "history="+strconv.Itoa(r.History))
	}
	if r.HistoryTTL > 0 {
		opts = append(opts, "ttl="+r.HistoryTTL.String())
	}
	if r.Presence {
		opts = append(opts, "presence")
	}
	return r.Pattern + ":" + strings.Join(opts, ",")
}

// channelRules finds the rule of a channel. It is read-only after New.
type channelRules struct {
	rules    []ChannelRule
	maxBytes int64
	history  bool // some rule keeps history
	presence bool // some rule has presence
}

func newChannelRules(rules []ChannelRule, maxBytes int64) (*channelRules, error) {
	cr := &channelRules{rules: rules, maxBytes: maxBytes}
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return nil, err
		}
		cr.history = cr.history || r.History > 0
		cr.presence = cr.presence || r.Presence
	}
	return cr, nil
}

// rule returns the first rule matching channel, or nil. Meta, service
// and presence channels have none.
func (cr *channelRules) rule(channel string) *ChannelRule {
	if len(cr.rules) == 0 || protocol.IsMeta(channel) || protocol.IsService(channel) || isPresenceChannel(channel) {
		return nil
	}
	for i := range cr.rules {
		if protocol.Match(cr.rules[i].Pattern, channel) {
			return &cr.rules[i]
		}
	}
	return nil
}

// policy returns channel's history policy, or nil when it keeps none.
func (cr *channelRules) policy(channel string) *HistoryPolicy {
	if !cr.history || protocol.IsWild(channel) {
		return nil
	}
	r := cr.rule(channel)
	if r == nil || r.History <= 0 {
		return nil
	}
	return &HistoryPolicy{MaxLen: r.History, MaxAge: r.HistoryTTL, MaxBytes: cr.maxBytes}
}

// hasPresence reports whether channel's presence is published.
func (cr *channelRules) hasPresence(channel string) bool {
	if !cr.presence || protocol.IsWild(channel) {
		return false
	}
	r := cr.rule(channel)
	return r != nil && r.Presence
}

func isPresenceChannel(ch string) bool {
	return ch == PresencePrefix || strings.HasPrefix(ch, PresencePrefix+"/")
}
