package queue

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// hop is one server to try.
type hop struct {
	host string // name for TLS SNI and Remote-MTA
	addr string // host:port to dial
}

// routeError is a routing outcome that decides the attempt by itself.
type routeError struct {
	perm   bool
	status string
	msg    string
}

func (e *routeError) Error() string { return e.msg }

// resolver returns the DNS resolver: the configured server, or the
// system's.
func (q *Queue) resolver() *net.Resolver {
	if q.cfg.Resolver == "" {
		return net.DefaultResolver
	}
	server := q.cfg.Resolver
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// route lists the servers for a domain in the order to try them: the
// transport map, else the smarthost, else the domain's MX hosts by
// preference (RFC 5321 section 5.1), the domain itself when it has no MX
// (implicit MX), nothing when it has a null MX (RFC 7505).
func (q *Queue) route(ctx context.Context, domain string) ([]hop, *routeError) {
	// An SMTPUTF8 sender may give the domain in U-labels; DNS holds it in
	// A-labels (RFC 6531 section 3.2 leaves the lookup to IDNA, RFC 5891
	// section 5: the lookup profile).
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return nil, &routeError{perm: true, status: "5.1.2", msg: "domain " + domain + " is not a valid domain name"}
	}
	for _, d := range []string{domain, ascii} {
		if t, ok := q.cfg.Transport[d]; ok {
			return []hop{q.hopFor(t)}, nil
		}
	}
	if q.cfg.Smarthost != "" {
		return []hop{q.hopFor(q.cfg.Smarthost)}, nil
	}
	domain = ascii
	r := q.resolver()
	mxs, err := r.LookupMX(ctx, domain)
	// RFC 7505 section 3: a single MX "." means the domain takes no mail.
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			if len(mxs) == 1 {
				return nil, &routeError{perm: true, status: "5.1.10", msg: "domain " + domain + " accepts no mail (null MX, RFC 7505)"}
			}
		}
	}
	var dnsErr *net.DNSError
	if err != nil && len(mxs) == 0 {
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			return nil, &routeError{status: "4.4.3", msg: "MX lookup for " + domain + " failed: " + dnsMessage(err)}
		}
		// RFC 5321 section 5.1: no MX records: the domain itself is the
		// implicit MX, if it has an address.
		ips, err := r.LookupIPAddr(ctx, domain)
		if err != nil {
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return nil, &routeError{perm: true, status: "5.1.2", msg: "domain " + domain + " has no MX and no address"}
			}
			return nil, &routeError{status: "4.4.3", msg: "address lookup for " + domain + " failed: " + dnsMessage(err)}
		}
		if len(ips) == 0 {
			return nil, &routeError{perm: true, status: "5.1.2", msg: "domain " + domain + " has no MX and no address"}
		}
		return []hop{{host: domain, addr: net.JoinHostPort(domain, strconv.Itoa(q.cfg.Port))}}, nil
	}
	var hops []hop
	for _, mx := range mxs {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			continue
		}
		hops = append(hops, hop{host: h, addr: net.JoinHostPort(h, strconv.Itoa(q.cfg.Port))})
	}
	if len(hops) == 0 {
		return nil, &routeError{status: "4.4.3", msg: "no usable MX for " + domain}
	}
	return hops, nil
}

// hopFor turns "host:port" or "host" (with Config.Port) into a hop.
func (q *Queue) hopFor(target string) hop {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		host, port = strings.Trim(target, "[]"), strconv.Itoa(q.cfg.Port)
	}
	return hop{host: host, addr: net.JoinHostPort(host, port)}
}

// dnsMessage keeps a DNS error short and free of resolver internals.
func dnsMessage(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return "timeout"
		}
		return dnsErr.Err
	}
	return "lookup error"
}
