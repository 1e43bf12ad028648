package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// redisServer is the redis-server the redis configurations share: started
// once per run on a free loopback port, without persistence, pinned with the
// load generator (CPU 0) so Caddy keeps CPU 1 to itself. Every Caddy uses its
// own key prefix, so configurations never see each other's keys.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	done chan struct{}
}

// startRedis starts redis-server; with taskset it is pinned to CPU 0.
func startRedis(taskset string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("the redis configurations need redis-server on PATH (Debian: apt-get install redis-server, or make deps): %w", err)
	}
	dir, err := os.MkdirTemp("", "sessiongate-bench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"}
		var cmd *exec.Cmd
		if taskset != "" {
			cmd = exec.Command(taskset, append([]string{"-c", "0", bin}, args...)...)
		} else {
			cmd = exec.Command(bin, args...)
		}
		logs := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		r := &redisServer{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(ports[0]), dir: dir, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(r.done) }()
		if lastErr = r.waitReady(10 * time.Second); lastErr == nil {
			return r, nil
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, logs.tail(2000))
		r.stopProcess()
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// waitReady polls with PING until redis answers +PONG.
func (r *redisServer) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("redis-server exited before it was ready")
		default:
		}
		if err := r.ping(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis-server not ready within %s: %w", limit, err)
		}
		time.Sleep(25 * time.Millisecond) // poll interval
	}
}

func (r *redisServer) ping() error {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// pid is redis-server's pid (taskset execs it).
func (r *redisServer) pid() int { return r.cmd.Process.Pid }

func (r *redisServer) stopProcess() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// close stops redis-server and removes its directory.
func (r *redisServer) close() {
	if r == nil {
		return
	}
	r.stopProcess()
	os.RemoveAll(r.dir)
}
