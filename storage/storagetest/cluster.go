package storagetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Cluster is a throwaway PostgreSQL server of one test: its own data
// directory under t.TempDir(), trust authentication for the user postgres,
// TCP on 127.0.0.1 at a free port and its Unix socket in the temporary
// directory. A test may stop it (as an operator or a crash would) and start
// it again on the same port, to see what the code does while the database is
// away and when it returns. It is stopped when the test ends, whatever
// happened.
type Cluster struct {
	t       testing.TB
	pgCtl   string
	data    string
	sockets string
	logFile string
	port    int
	runAs   []string // prefix that runs a command as the cluster's owner
}

// NewCluster initialises and starts a throwaway cluster. It skips t with a
// message when initdb or pg_ctl cannot be found (on PATH, or in Debian's
// /usr/lib/postgresql/*/bin), unless CI=true, where a missing server is a
// failure: CI must run these tests.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	initdb, pgCtl, err := serverTools()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("throwaway PostgreSQL cluster: %v (CI=true: install the PostgreSQL server)", err)
		}
		t.Skipf("skipping: a throwaway PostgreSQL cluster needs initdb and pg_ctl: %v", err)
	}
	dir := t.TempDir()
	c := &Cluster{t: t, pgCtl: pgCtl, data: filepath.Join(dir, "data"), sockets: filepath.Join(dir, "run")}
	// A socket path longer than 107 bytes cannot be bound; a long test
	// name can make the temporary directory that deep.
	if len(c.sockets)+len("/.s.PGSQL.65535") > 100 {
		short, err := os.MkdirTemp("", "pg")
		if err != nil {
			t.Fatalf("socket directory: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		c.sockets = filepath.Join(short, "run")
	}
	c.logFile = filepath.Join(c.sockets, "server.log")
	for _, d := range []string{c.data, c.sockets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("cluster directory: %v", err)
		}
	}
	// PostgreSQL refuses to run as root: as root (a container), the
	// cluster belongs to the user postgres (or nobody).
	if os.Geteuid() == 0 {
		if err := c.dropRoot(dir); err != nil {
			t.Skipf("skipping: running as root and cannot hand a cluster to an unprivileged user: %v", err)
		}
	}
	c.port = freePort(t)
	if out, err := c.command(initdb, "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Registered before the first start: a start that half worked, or a
	// test that fails later, still leaves no server behind.
	t.Cleanup(func() {
		c.command(c.pgCtl, "stop", "-D", c.data, "-m", "immediate", "-w").Run()
	})
	c.Start()
	return c
}

// URL is the cluster's database postgres as the user postgres.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Start starts the server (again, on the same port) and waits until it
// accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", c.port, c.sockets)
	out, err := c.command(c.pgCtl, "start", "-D", c.data, "-l", c.logFile, "-w", "-t", "30", "-o", opts).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(c.logFile)
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server with pg_ctl's "fast" mode, as an operator would: it
// ends every session (in-flight statements fail, clients see the server
// terminate the connection) and waits until the server is down.
func (c *Cluster) Stop() {
	c.t.Helper()
	if out, err := c.command(c.pgCtl, "stop", "-D", c.data, "-m", "fast", "-w", "-t", "30").CombinedOutput(); err != nil {
		c.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// StopAsync starts a fast stop and returns at once; the returned channel
// receives the outcome when the server is down.
func (c *Cluster) StopAsync() <-chan error {
	done := make(chan error, 1)
	cmd := c.command(c.pgCtl, "stop", "-D", c.data, "-m", "fast", "-w", "-t", "30")
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
		}
		done <- err
	}()
	return done
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	argv := append(slices.Clone(c.runAs), name)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// dropRoot makes the cluster's directories the property of an unprivileged
// user and runs the server's commands as that user.
func (c *Cluster) dropRoot(dir string) error {
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return err
	}
	var u *user.User
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{c.data, c.sockets} {
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	// The user must reach the directories through the test's own.
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(c.sockets), filepath.Dir(filepath.Dir(c.sockets))} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	c.runAs = []string{runuser, "-u", u.Username, "--"}
	return nil
}

// serverTools finds initdb and pg_ctl.
func serverTools() (initdb, pgCtl string, err error) {
	initdb, err1 := exec.LookPath("initdb")
	pgCtl, err2 := exec.LookPath("pg_ctl")
	if err1 == nil && err2 == nil {
		return initdb, pgCtl, nil
	}
	// Debian and Ubuntu keep them out of PATH; take the newest.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(i) && isExecutable(p) {
			return i, p, nil
		}
	}
	return "", "", fmt.Errorf("initdb or pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
