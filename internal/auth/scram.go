package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/roost-mail/roost/internal/mailstore"
)

// scramServer is SCRAM-SHA-256 (RFC 7677, over RFC 5802) without channel
// binding: the exchange is
//
//	C: n,,n=user,r=cnonce
//	S: r=cnonce+snonce,s=salt,i=4096
//	C: c=biws,r=cnonce+snonce,p=proof
//	S: v=serversignature
type scramServer struct {
	finish
	step int // 0: waiting for client-first; 1: waiting for client-final
	// asked: an empty challenge was sent for a missing initial response.
	asked bool

	first    clientFirst
	found    mailstore.Account // looked up at client-first; Account() only after success
	v        scramVerifier
	unknown  bool // no such user or no verifier: the proof must fail
	nonce    string
	srvFirst string
}

// clientFirst is a parsed client-first-message (RFC 5802 section 7).
type clientFirst struct {
	gs2Header string // "n,," or "y,," or with "a=authzid"
	authzid   string
	username  string // decoded saslname
	nonce     string
	bare      string // client-first-message-bare, for AuthMessage
}

// clientFinal is a parsed client-final-message (RFC 5802 section 7).
type clientFinal struct {
	channelBinding []byte // decoded c= value
	nonce          string
	proof          []byte
	withoutProof   string // client-final-message-without-proof, for AuthMessage
}

func (s *scramServer) Next(resp []byte) ([]byte, bool, error) {
	if s.ended {
		return nil, false, errFinished
	}
	switch s.step {
	case 0:
		if resp == nil && !s.asked {
			// RFC 4422 section 5: SCRAM is client-first; without an
			// initial response the server's first challenge is empty.
			s.asked = true
			return []byte{}, false, nil
		}
		return s.serverFirst(resp)
	default:
		return s.serverFinal(resp)
	}
}

func (s *scramServer) serverFirst(resp []byte) ([]byte, bool, error) {
	cf, err := parseClientFirst(resp)
	if err != nil {
		return s.fail(err)
	}
	s.first = cf
	s.username = cf.username
	// The key the stores look names up by: every spelling that finds an
	// account (case, spaces, a #device suffix) must also map to one fake
	// salt when none is found, or comparing two spellings' salts would tell
	// which accounts exist.
	key := strings.ToLower(strings.TrimSpace(stripDevice(cf.username)))
	acct, err := s.a.dir.ResolveAddress(s.ctx, key)
	switch {
	case err == nil:
		s.found = acct
		if _, v, perr := parseStored(acct.PasswordHash); perr == nil && v.iter > 0 {
			s.v = v
		} else {
			s.unknown = true
		}
	case errors.Is(err, mailstore.ErrNoSuchAccount) || errors.Is(err, mailstore.ErrInvalidName):
		s.unknown = true
	default:
		return s.fail(fmt.Errorf("look up %q: %w", cf.username, err))
	}
	if s.unknown {
		// An unknown user gets a salt that is stable per name and an
		// ordinary iteration count, so the server-first-message does
		// not tell which accounts exist (RFC 5802 section 9).
		s.v = scramVerifier{
			iter:      s.a.p.SCRAMIterations,
			salt:      hmacSHA256(s.a.macKey, []byte("scram-salt\x00"+key))[:saltLen],
			storedKey: make([]byte, sha256.Size),
			serverKey: make([]byte, sha256.Size),
		}
	}
	s.nonce = cf.nonce + s.a.newNonce()
	// RFC 5802 section 7: server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count.
	s.srvFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.v.salt) + ",i=" + strconv.Itoa(s.v.iter)
	s.step = 1
	return []byte(s.srvFirst), false, nil
}

func (s *scramServer) serverFinal(resp []byte) ([]byte, bool, error) {
	cf, err := parseClientFinal(resp)
	if err != nil {
		return s.fail(err)
	}
	// RFC 5802 section 5.1 (c=): the channel binding data must be the
	// base64 of the gs2 header the client sent first (no cbind-data
	// without channel binding).
	if subtle.ConstantTimeCompare(cf.channelBinding, []byte(s.first.gs2Header)) != 1 {
		return s.fail(malformed("SCRAM channel binding does not match the GS2 header"))
	}
	if cf.nonce != s.nonce {
		return s.fail(malformed("SCRAM nonce mismatch"))
	}
	// RFC 5802 section 3: AuthMessage = client-first-message-bare + "," +
	// server-first-message + "," + client-final-message-without-proof;
	// ClientSignature = HMAC(StoredKey, AuthMessage); ClientKey =
	// ClientProof XOR ClientSignature; the proof is good when
	// H(ClientKey) == StoredKey.
	authMsg := []byte(s.first.bare + "," + s.srvFirst + "," + cf.withoutProof)
	sig := hmacSHA256(s.v.storedKey, authMsg)
	if len(cf.proof) != len(sig) {
		return s.fail(malformed("SCRAM proof length"))
	}
	clientKey := make([]byte, len(sig))
	subtle.XORBytes(clientKey, cf.proof, sig)
	got := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(got[:], s.v.storedKey) != 1 || s.unknown {
		return s.fail(fmt.Errorf("%w: SCRAM proof does not verify", ErrAuthFailed))
	}
	// Authorization: nobody may act as another user (see PLAIN).
	if s.first.authzid != "" && !strings.EqualFold(stripDevice(s.first.authzid), stripDevice(s.first.username)) &&
		!strings.EqualFold(stripDevice(s.first.authzid), s.found.Name) {
		return s.fail(fmt.Errorf("%w: authorization identity %q differs", ErrAuthFailed, s.first.authzid))
	}
	s.ended = true
	s.acct = s.found
	// RFC 5802 section 3: ServerSignature = HMAC(ServerKey, AuthMessage),
	// sent as v= so that the client can verify the server too.
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSHA256(s.v.serverKey, authMsg))), true, nil
}

// parseClientFirst parses RFC 5802 section 7:
//
//	client-first-message = gs2-header client-first-message-bare
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
func parseClientFirst(msg []byte) (clientFirst, error) {
	if len(msg) > 4*maxField || !utf8.Valid(msg) {
		return clientFirst{}, malformed("SCRAM client-first too long or not UTF-8")
	}
	s := string(msg)
	var cf clientFirst
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return clientFirst{}, malformed("SCRAM GS2 header")
	}
	switch {
	case flag == "n" || flag == "y":
		// "y": the client could bind but believes the server cannot;
		// Roost never offers SCRAM-SHA-256-PLUS, so that is right.
	case strings.HasPrefix(flag, "p="):
		// RFC 5802 section 6: channel binding was not offered.
		return clientFirst{}, malformed("SCRAM channel binding not supported")
	default:
		return clientFirst{}, malformed("SCRAM GS2 channel binding flag %q", flag)
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return clientFirst{}, malformed("SCRAM GS2 header")
	}
	if az != "" {
		v, ok := strings.CutPrefix(az, "a=")
		if !ok {
			return clientFirst{}, malformed("SCRAM GS2 authzid")
		}
		name, err := decodeSASLName(v)
		if err != nil {
			return clientFirst{}, err
		}
		cf.authzid = name
	}
	cf.gs2Header = flag + "," + az + ","
	cf.bare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return clientFirst{}, malformed("SCRAM client-first needs n= and r=")
	}
	// RFC 5802 section 5.1 (m=): a mandatory extension we do not know
	// must fail the exchange.
	if strings.HasPrefix(attrs[0], "m=") {
		return clientFirst{}, malformed("SCRAM mandatory extension not supported")
	}
	u, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return clientFirst{}, malformed("SCRAM client-first must start with n=")
	}
	name, err := decodeSASLName(u)
	if err != nil {
		return clientFirst{}, err
	}
	if name == "" {
		return clientFirst{}, malformed("SCRAM empty username")
	}
	cf.username = name
	n, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(n) {
		return clientFirst{}, malformed("SCRAM client nonce")
	}
	cf.nonce = n
	for _, ext := range attrs[2:] {
		if !validAttr(ext) {
			return clientFirst{}, malformed("SCRAM extension %q", ext)
		}
	}
	return cf, nil
}

// parseClientFinal parses RFC 5802 section 7:
//
//	client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//	client-final-message = client-final-message-without-proof "," proof
func parseClientFinal(msg []byte) (clientFinal, error) {
	if len(msg) > 4*maxField || !utf8.Valid(msg) {
		return clientFinal{}, malformed("SCRAM client-final too long or not UTF-8")
	}
	s := string(msg)
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return clientFinal{}, malformed("SCRAM client-final has no proof")
	}
	var cf clientFinal
	cf.withoutProof = s[:i]
	proof, err := base64.StdEncoding.Strict().DecodeString(s[i+3:])
	if err != nil || len(proof) == 0 {
		return clientFinal{}, malformed("SCRAM proof is not base64")
	}
	cf.proof = proof
	attrs := strings.Split(cf.withoutProof, ",")
	if len(attrs) < 2 {
		return clientFinal{}, malformed("SCRAM client-final needs c= and r=")
	}
	c, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return clientFinal{}, malformed("SCRAM client-final must start with c=")
	}
	if cf.channelBinding, err = base64.StdEncoding.Strict().DecodeString(c); err != nil {
		return clientFinal{}, malformed("SCRAM channel binding is not base64")
	}
	n, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(n) {
		return clientFinal{}, malformed("SCRAM nonce")
	}
	cf.nonce = n
	for _, ext := range attrs[2:] {
		if !validAttr(ext) {
			return clientFinal{}, malformed("SCRAM extension %q", ext)
		}
	}
	return cf, nil
}

// decodeSASLName undoes RFC 5802 section 5.1's escaping: "=2C" is ",",
// "=3D" is "="; any other "=" makes the message invalid.
func decodeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", malformed("SCRAM saslname has a bad escape")
		}
		i += 2
	}
	return b.String(), nil
}

// validNonce: RFC 5802 section 7, printable = %x21-2B / %x2D-7E.
func validNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validAttr: attr-val = ALPHA "=" value (RFC 5802 section 7).
func validAttr(a string) bool {
	return len(a) >= 2 && a[1] == '=' && (a[0] >= 'a' && a[0] <= 'z' || a[0] >= 'A' && a[0] <= 'Z') && a[0] != 'm'
}

func randomNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
