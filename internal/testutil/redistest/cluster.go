package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
	// URL is redis-cluster://FIRST?addr=SECOND&addr=..., what
	// BAYEUX_ENGINE takes.
	URL string
}

// StartCluster starts n (at least 3) redis-servers with cluster mode on,
// in subdirectories of dir, joins them with redis-cli --cluster create and
// waits until the cluster is ok on every node.
func StartCluster(dir string, n int) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found in PATH: a Redis Cluster test needs it (Debian/Ubuntu: apt-get install -y redis-tools)")
	}
	c := &Cluster{}
	fail := func(err error) (*Cluster, error) {
		c.Kill()
		return nil, err
	}
	for i := range n {
		d := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
		bus, err := FreePort()
		if err != nil {
			return fail(err)
		}
		s, err := New(d, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(bus))
		if err != nil {
			return fail(err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %v: %s", err, out))
	}
	c.URL = "redis-cluster://" + c.Nodes[0].Addr()
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		c.URL += sep + "addr=" + s.Addr()
	}
	if err := c.WaitOK(20 * time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

// WaitOK waits until every node says cluster_state:ok.
func (c *Cluster) WaitOK(d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, s := range c.Nodes {
		cl := s.Client()
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("redis cluster not ok on %s: %v %s", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
}

// Kill stops every node.
func (c *Cluster) Kill() {
	for _, s := range c.Nodes {
		s.Kill()
	}
}

// Restart starts every node again (each keeps its cluster configuration,
// not its data) and waits until the cluster is ok.
func (c *Cluster) Restart() error {
	for _, s := range c.Nodes {
		if err := s.Restart(); err != nil {
			return err
		}
	}
	return c.WaitOK(30 * time.Second)
}

// PIDs are the nodes' process ids.
func (c *Cluster) PIDs() []int {
	out := make([]int, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.PID()
	}
	return out
}

// Sentinel is a primary, its replica and one Sentinel watching them
// (quorum 1).
type Sentinel struct {
	Primary, Replica, Sentinel *Server
	// Name is the primary's name for the Sentinel.
	Name string
	// URL is redis-sentinel://SENTINEL/0?master_name=NAME, what
	// BAYEUX_ENGINE takes.
	URL string
}

// StartSentinel starts a primary, a replica of it and a Sentinel, in
// subdirectories of dir.
func StartSentinel(dir string) (*Sentinel, error) {
	sn := &Sentinel{Name: "bayeux"}
	fail := func(err error) (*Sentinel, error) {
		sn.Kill()
		return nil, err
	}
	var err error
	mk := func(name string) (string, error) {
		d := filepath.Join(dir, name)
		return d, os.MkdirAll(d, 0o755)
	}
	d, err := mk("primary")
	if err != nil {
		return fail(err)
	}
	// The replica syncs at once (not after diskless sync's default 5 s).
	if sn.Primary, err = New(d, "--repl-diskless-sync-delay", "0"); err != nil {
		return fail(err)
	}
	if d, err = mk("replica"); err != nil {
		return fail(err)
	}
	if sn.Replica, err = New(d, "--replicaof", "127.0.0.1", strconv.Itoa(sn.Primary.Port()),
		"--repl-diskless-sync-delay", "0"); err != nil {
		return fail(err)
	}
	if d, err = mk("sentinel"); err != nil {
		return fail(err)
	}
	conf := filepath.Join(d, "sentinel.conf")
	cfg := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %s 1000\n"+
		"sentinel failover-timeout %s 5000\n"+
		"sentinel parallel-syncs %s 1\n", sn.Name, sn.Primary.Port(), sn.Name, sn.Name, sn.Name)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return fail(err)
	}
	if sn.Sentinel, err = startSentinelProc(conf, d); err != nil {
		return fail(err)
	}
	sn.URL = fmt.Sprintf("redis-sentinel://%s/0?master_name=%s", sn.Sentinel.Addr(), sn.Name)
	// Wait until the replica is in sync and the Sentinel knows it.
	if err := sn.waitReplica(15 * time.Second); err != nil {
		return fail(err)
	}
	return sn, nil
}

// startSentinelProc runs redis-server in sentinel mode with conf (which
// it rewrites as it learns the topology).
func startSentinelProc(conf, dir string) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, port: port, conf: conf, extra: []string{"--sentinel"}}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// waitReplica waits until the replica is in sync with the primary and the
// Sentinel lists it.
func (sn *Sentinel) waitReplica(d time.Duration) error {
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sn.Sentinel.Addr(), MaxRetries: -1})
	defer sc.Close()
	rc := sn.Replica.Client()
	defer rc.Close()
	deadline := time.Now().Add(d)
	for {
		info, err := rc.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			reps, err := sc.Replicas(context.Background(), sn.Name).Result()
			if err == nil {
				for _, r := range reps {
					if r["port"] == strconv.Itoa(sn.Replica.Port()) && !strings.Contains(r["flags"], "disconnected") {
						return nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica is not in sync or the Sentinel does not list it: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PrimaryAddr asks the Sentinel for the current primary.
func (sn *Sentinel) PrimaryAddr() (string, error) {
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sn.Sentinel.Addr(), MaxRetries: -1})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(context.Background(), sn.Name).Result()
	if err != nil || len(a) != 2 {
		return "", fmt.Errorf("sentinel get-master-addr-by-name: %v %v", a, err)
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// Failover makes the Sentinel promote the replica now (SENTINEL FAILOVER)
// and waits until it names the replica as the primary.
func (sn *Sentinel) Failover(d time.Duration) error {
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sn.Sentinel.Addr(), MaxRetries: -1})
	defer sc.Close()
	if err := sc.Failover(context.Background(), sn.Name).Err(); err != nil {
		return fmt.Errorf("sentinel failover: %w", err)
	}
	deadline := time.Now().Add(d)
	for {
		if a, err := sn.PrimaryAddr(); err == nil && a == sn.Replica.Addr() {
			// And the replica took the role.
			c := sn.Replica.Client()
			role, err := c.Do(context.Background(), "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica %s did not become the primary", sn.Replica.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops every process.
func (sn *Sentinel) Kill() {
	for _, s := range []*Server{sn.Sentinel, sn.Replica, sn.Primary} {
		if s != nil {
			s.Kill()
		}
	}
}
