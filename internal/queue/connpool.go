package queue

import (
	"sync"
	"time"
)

// Connection reuse. One SMTP session may carry any number of mail
// transactions (RFC 5321 section 3.3), so after a transaction the
// connection to a hop waits, idle, for the next delivery to the same hop
// (same address, same TLS choice). That delivery starts with RSET (section
// 4.1.1.5), which both clears the session and shows it is still alive,
// instead of connecting, reading a greeting, saying EHLO and negotiating
// TLS again: one round trip instead of five or more and a handshake. A
// connection idle for Config.ConnIdle is closed with QUIT; so are all of
// them when Run returns. At most Config.MaxConnsPerDest wait per hop,
// which is as many as may be in use at once.

// pooledConn is an idle connection with what its EHLO announced.
type pooledConn struct {
	c     *smtpConn
	ext   map[string]string
	timer *time.Timer // closes it once idle too long
}

// connPool holds the idle connections of a Queue by hop key.
type connPool struct {
	max     int
	idleFor time.Duration

	mu   sync.Mutex
	idle map[string][]*pooledConn // guarded by mu; newest last
}

func newConnPool(max int, idleFor time.Duration) *connPool {
	return &connPool{max: max, idleFor: idleFor, idle: map[string][]*pooledConn{}}
}

// get takes the most recently used idle connection for key, or nil.
func (p *connPool) get(key string) (*smtpConn, map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := p.idle[key]; len(l) > 0; l = p.idle[key] {
		pc := l[len(l)-1]
		p.idle[key] = l[:len(l)-1]
		if pc.timer.Stop() {
			return pc.c, pc.ext
		}
		// The timer fired and is closing it: take the next.
	}
	delete(p.idle, key)
	return nil, nil
}

// put makes c wait for the next delivery to key, or closes it if enough
// already wait.
func (p *connPool) put(key string, c *smtpConn, ext map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[key]) >= p.max {
		go quit(c)
		return
	}
	pc := &pooledConn{c: c, ext: ext}
	pc.timer = time.AfterFunc(p.idleFor, func() { p.expire(key, pc) })
	p.idle[key] = append(p.idle[key], pc)
}

// expire closes pc if it is still idle under key.
func (p *connPool) expire(key string, pc *pooledConn) {
	p.mu.Lock()
	l := p.idle[key]
	for i, x := range l {
		if x == pc {
			p.idle[key] = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(p.idle[key]) == 0 {
		delete(p.idle, key)
	}
	p.mu.Unlock()
	quit(pc.c)
}

// count is the number of idle connections.
func (p *connPool) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.idle {
		n += len(l)
	}
	return n
}

// closeAll closes every idle connection.
func (p *connPool) closeAll() {
	p.mu.Lock()
	var all []*pooledConn
	for _, l := range p.idle {
		for _, pc := range l {
			if pc.timer.Stop() {
				all = append(all, pc)
			}
		}
	}
	p.idle = map[string][]*pooledConn{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pc := range all {
		wg.Go(func() { quit(pc.c) })
	}
	wg.Wait()
}

// quitWait bounds how long a closing connection waits for QUIT's reply.
const quitWait = 2 * time.Second

// quit ends a session politely (RFC 5321 section 4.1.1.10) and closes it.
func quit(c *smtpConn) {
	c.timeout = quitWait
	c.cmd("QUIT") //nolint:errcheck // closing either way
	c.nc.Close()
}
