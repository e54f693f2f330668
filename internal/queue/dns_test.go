package queue

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// dnsRecord is one answer of the test DNS server.
type dnsRecord struct {
	typ  uint16 // 1 A, 15 MX
	pref uint16
	host string // MX target ("." for a null MX)
	ip   net.IP
}

// startDNS runs a tiny authoritative DNS server on 127.0.0.1 (UDP) that
// answers from zone, keyed "name./TYPE"; a name not in names is NXDOMAIN,
// a name in servfail answers SERVFAIL.
func startDNS(t testing.TB, zone map[string][]dnsRecord, servfail map[string]bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	names := map[string]bool{}
	for k := range zone {
		names[k[:strings.LastIndexByte(k, '/')]] = true
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], zone, names, servfail); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func dnsAnswer(q []byte, zone map[string][]dnsRecord, names, servfail map[string]bool) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	off := 12
	var labels []string
	for off < len(q) && q[off] != 0 {
		l := int(q[off])
		if off+1+l > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[off+1:off+1+l])))
		off += 1 + l
	}
	off++
	if off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	qEnd := off + 4
	name := strings.Join(labels, ".") + "."
	typ := map[uint16]string{1: "A", 15: "MX", 28: "AAAA"}[qtype]
	rcode := uint16(0)
	switch {
	case servfail[name]:
		rcode = 2
	case !names[name]:
		rcode = 3
	}
	recs := zone[name+"/"+typ]
	if rcode != 0 {
		recs = nil
	}
	out := make([]byte, 12, 512)
	copy(out, q[:2])
	binary.BigEndian.PutUint16(out[2:], 0x8580|rcode) // QR, AA, RD, RA
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(len(recs)))
	out = append(out, q[12:qEnd]...)
	for _, r := range recs {
		out = append(out, 0xc0, 12) // name: pointer to the question
		out = binary.BigEndian.AppendUint16(out, r.typ)
		out = binary.BigEndian.AppendUint16(out, 1)
		out = binary.BigEndian.AppendUint32(out, 60)
		var rdata []byte
		switch r.typ {
		case 1:
			rdata = r.ip.To4()
		case 15:
			rdata = binary.BigEndian.AppendUint16(nil, r.pref)
			for _, l := range strings.Split(strings.TrimSuffix(r.host, "."), ".") {
				if l != "" {
					rdata = append(rdata, byte(len(l)))
					rdata = append(rdata, l...)
				}
			}
			rdata = append(rdata, 0)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
	}
	return out
}

func testZone() map[string][]dnsRecord {
	lo := net.IPv4(127, 0, 0, 1)
	return map[string][]dnsRecord{
		"dns.test./MX":       {{typ: 15, pref: 20, host: "backup.dns.test."}, {typ: 15, pref: 10, host: "mx.dns.test."}},
		"mx.dns.test./A":     {{typ: 1, ip: lo}},
		"backup.dns.test./A": {{typ: 1, ip: lo}},
		"nullmx.test./MX":    {{typ: 15, pref: 0, host: "."}},
		"nomx.test./A":       {{typ: 1, ip: lo}},
		"nomx.test./MX":      nil,
		// bücher.test in A-labels (RFC 5891).
		"xn--bcher-kva.test./MX":   {{typ: 15, pref: 10, host: "mx.xn--bcher-kva.test."}},
		"mx.xn--bcher-kva.test./A": {{typ: 1, ip: lo}},
		"xn--mller-kva.test./A":    {{typ: 1, ip: lo}},
		"xn--mller-kva.test./MX":   nil,
	}
}

func TestRouteDNS(t *testing.T) {
	resolver := startDNS(t, testZone(), map[string]bool{"servfail.test.": true})
	q := New(nil, Config{Resolver: resolver, Port: 2525}, testLogger())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hops, rerr := q.route(ctx, "dns.test")
	if rerr != nil || len(hops) != 2 || hops[0].addr != "mx.dns.test:2525" || hops[1].host != "backup.dns.test" {
		t.Fatalf("MX route: %v %v", hops, rerr)
	}
	if _, rerr := q.route(ctx, "nullmx.test"); rerr == nil || !rerr.perm || rerr.status != "5.1.10" {
		t.Fatalf("null MX: %v", rerr)
	}
	// RFC 5321 section 5.1: implicit MX.
	if hops, rerr := q.route(ctx, "nomx.test"); rerr != nil || len(hops) != 1 || hops[0].addr != "nomx.test:2525" {
		t.Fatalf("implicit MX: %v %v", hops, rerr)
	}
	if _, rerr := q.route(ctx, "nxdomain.test"); rerr == nil || !rerr.perm {
		t.Fatalf("NXDOMAIN: %v", rerr)
	}
	if _, rerr := q.route(ctx, "servfail.test"); rerr == nil || rerr.perm {
		t.Fatalf("SERVFAIL must be temporary: %v", rerr)
	}
	// A domain in U-labels (from an SMTPUTF8 sender) is looked up in
	// A-labels, MX and implicit MX alike; one IDNA refuses fails for good.
	if hops, rerr := q.route(ctx, "Bücher.test"); rerr != nil || len(hops) != 1 || hops[0].host != "mx.xn--bcher-kva.test" {
		t.Fatalf("IDN MX route: %v %v", hops, rerr)
	}
	if hops, rerr := q.route(ctx, "müller.test"); rerr != nil || len(hops) != 1 || hops[0].addr != "xn--mller-kva.test:2525" {
		t.Fatalf("IDN implicit MX: %v %v", hops, rerr)
	}
	if _, rerr := q.route(ctx, "snow☃man.test"); rerr == nil || !rerr.perm || rerr.status != "5.1.2" {
		t.Fatalf("a name IDNA refuses: %v", rerr)
	}
}

func TestDeliverViaMX(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	port := sk.ln.Addr().(*net.TCPAddr).Port
	q := New(st, Config{Hostname: "mx.x.test", Resolver: startDNS(t, testZone(), nil), Port: port}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@dns.test", "carol@nullmx.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	if m := sk.wait(t, 1); m[0].Rcpts[0] != "bob@dns.test" {
		t.Fatalf("sink got %v", m[0].Rcpts)
	}
	waitFor(t, "null MX bounce", func() bool { return len(inbox(t, st, alice)) == 1 })
	r := parseDSN(t, inbox(t, st, alice)[0]).perRcpt[0]
	if r.Get("Final-Recipient") != "rfc822; carol@nullmx.test" || r.Get("Status") != "5.1.10" {
		t.Fatalf("null MX DSN: %v", r)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
}
