package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Scenarios.
const (
	Fanout    = "fanout"
	Rooms     = "rooms"
	Idle      = "idle"
	Handshake = "handshake"
)

// Transport types (-transport).
const (
	TransportLongPolling = "long-polling"
	TransportWebSocket   = "websocket"
)

// Config is one run. The zero value of a field means its default (see
// the flags in ParseFlags).
type Config struct {
	// URL is the Bayeux endpoint; several, comma-separated, are nodes of
	// one cluster: the clients are spread over them in turn.
	URL      string
	Scenario string

	Clients        int     // rooms, idle: simulated clients
	Subscribers    int     // fanout: subscribers (default: Clients)
	Rooms          int     // rooms: number of rooms
	RoomsPerClient int     // rooms: rooms each client joins
	Rate           float64 // fanout, rooms: messages per second in total
	Batch          int     // messages per publish request (one "tick")
	Size           int     // characters of padding in each message
	ChannelPrefix  string

	Duration time.Duration // measured window
	Warmup   time.Duration // load before the window, not measured
	Timeout  time.Duration // network delay allowance and drain time
	Workers  int           // concurrency of setup, and of the handshake scenario

	PID int // server process to watch (CPU, RSS); 0: none
	// PIDs are more server processes (the other nodes of a cluster):
	// their CPU and RSS add up with PID's.
	PIDs []int
	// RedisPIDs are redis-server processes to watch: their CPU in the
	// window, also per published message.
	RedisPIDs []int
	Procs     int // GOMAXPROCS of the generator
	JSON      bool

	// TransportType is "long-polling" (default) or "websocket".
	TransportType string

	// HTTP picks the long-polling HTTP client: "raw" (default, a minimal
	// HTTP/1.1 client, see RawLongPolling) or "std" (net/http).
	HTTP string

	// CPUProfile is a file for the generator's own CPU profile.
	CPUProfile string

	// Progress receives a line every 5 s while the run lasts; nil: none.
	Progress io.Writer
	// Transport overrides the one TransportType and HTTP pick (tests).
	Transport Transport
}

func (c *Config) setDefaults() {
	if c.Clients <= 0 {
		c.Clients = 100
	}
	if c.Subscribers <= 0 {
		c.Subscribers = c.Clients
	}
	if c.Rooms <= 0 {
		c.Rooms = 10
	}
	if c.RoomsPerClient <= 0 {
		c.RoomsPerClient = 1
	}
	c.RoomsPerClient = min(c.RoomsPerClient, c.Rooms)
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Size < 0 {
		c.Size = 0
	}
	if c.ChannelPrefix == "" {
		c.ChannelPrefix = "/bench"
	}
	c.ChannelPrefix = "/" + strings.Trim(c.ChannelPrefix, "/")
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.TransportType == "" {
		c.TransportType = TransportLongPolling
	}
	if c.HTTP == "" {
		c.HTTP = "raw"
	}
	if c.Procs <= 0 {
		c.Procs = 1
	}
}

func (c *Config) validate() error {
	for _, raw := range c.urls() {
		u, err := url.Parse(raw)
		if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-url must be http(s) URLs of Bayeux endpoints (comma-separated), got %q", c.URL)
		}
	}
	switch c.Scenario {
	case Fanout, Rooms, Idle, Handshake:
	default:
		return fmt.Errorf("-scenario must be fanout, rooms, idle or handshake, got %q", c.Scenario)
	}
	if c.TransportType != TransportLongPolling && c.TransportType != TransportWebSocket {
		return fmt.Errorf("-transport must be long-polling or websocket, got %q", c.TransportType)
	}
	if c.HTTP != "raw" && c.HTTP != "std" {
		return fmt.Errorf("-http must be raw or std, got %q", c.HTTP)
	}
	if c.Batch > 200 {
		return errors.New("-batch must be at most 200 (servers bound the messages of one request)")
	}
	return nil
}

// ParseFlags parses the command line of bayeux-bench.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("bayeux-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `bayeux-bench: a load generator for any Bayeux (CometD) server over long-polling or WebSocket.

usage: bayeux-bench -url http://host:port/cometd -scenario fanout|rooms|idle|handshake [-transport websocket] [flags]

scenarios:
  fanout     -subscribers N on one channel, one more client publishing -rate msg/s
  rooms      -clients C in -rooms K (each in -rooms-per-client), all publishing
             round-robin at -rate msg/s in total; CometD's own benchmark shape is
             -clients 1000 -rooms 100 -rooms-per-client 10 -batch 10 -size 50
  idle       -clients C holding their /meta/connect; with -pid, the server's RSS per client
  handshake  -workers W handshaking (then disconnecting) for -duration

Publishes are open-loop: message i is scheduled at start + i*batch/rate and
carries that time; latency runs from it to receipt, so a slow server or a late
sender shows up in the latency instead of lowering the load.

flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.URL, "url", "", "Bayeux endpoint URL, e.g. http://127.0.0.1:8080/cometd; several comma-separated (nodes of one cluster): clients spread over them in turn")
	fs.StringVar(&c.Scenario, "scenario", Fanout, "fanout, rooms, idle or handshake")
	fs.IntVar(&c.Clients, "clients", 100, "simulated clients (rooms, idle)")
	fs.IntVar(&c.Subscribers, "subscribers", 0, "fanout subscribers (default: -clients)")
	fs.IntVar(&c.Rooms, "rooms", 10, "rooms (rooms scenario)")
	fs.IntVar(&c.RoomsPerClient, "rooms-per-client", 1, "rooms each client joins (rooms scenario)")
	fs.Float64Var(&c.Rate, "rate", 100, "messages per second published in total (fanout, rooms)")
	fs.IntVar(&c.Batch, "batch", 1, "messages per publish request")
	fs.IntVar(&c.Size, "size", 50, "characters of padding in each message")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before the measured window (not measured)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "network delay allowance (a connect may take advice.timeout plus this) and how long to wait for late deliveries")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent handshakes (setup, and the handshake scenario)")
	var pids, redisPids string
	fs.StringVar(&pids, "pid", "", "server process id(s), comma-separated: report their CPU and RSS (summed)")
	fs.StringVar(&redisPids, "redis-pid", "", "redis-server process id(s), comma-separated: report their CPU, also per published message")
	fs.IntVar(&c.Procs, "gomaxprocs", 1, "GOMAXPROCS of the generator (cores it may use)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON line of results on stdout")
	fs.StringVar(&c.ChannelPrefix, "channel-prefix", "/bench", "root of the channels used")
	fs.StringVar(&c.TransportType, "transport", TransportLongPolling, "long-polling or websocket (one socket per client)")
	fs.StringVar(&c.HTTP, "http", "raw", "long-polling HTTP client: raw (minimal HTTP/1.1, cheapest) or std (net/http, for cross-checks)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the generator's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	all, err := parsePIDs(pids)
	if err != nil {
		return c, fmt.Errorf("-pid: %w", err)
	}
	if len(all) > 0 {
		c.PID, c.PIDs = all[0], all[1:]
	}
	if c.RedisPIDs, err = parsePIDs(redisPids); err != nil {
		return c, fmt.Errorf("-redis-pid: %w", err)
	}
	c.setDefaults()
	return c, c.validate()
}

// urls are the endpoints of URL.
func (c *Config) urls() []string { return strings.Split(c.URL, ",") }

// parsePIDs parses comma-separated process ids ("" and "0" are none).
func parsePIDs(s string) ([]int, error) {
	if s == "" || s == "0" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("not a process id: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
