package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/secure/precis"
)

// The stored password string (mailstore.Account.PasswordHash) is two
// PHC-style strings separated by one space:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<key> $scram-sha-256$i=4096$<salt>$<StoredKey>$<ServerKey>
//
// Binary fields are unpadded standard base64, as the PHC string format
// specifies. The first part verifies plaintext logins (PLAIN, LOGIN, IMAP
// LOGIN, POP3 PASS). The second is the SCRAM-SHA-256 verifier of RFC 5802
// section 3 (salt, iteration count, StoredKey = H(ClientKey), ServerKey),
// which lets SCRAM authenticate without the plaintext and without the
// server ever holding anything that can log in by itself. The second part
// is optional: a hash without it still works for plaintext mechanisms, and
// SCRAM fails for that account until its password is set again.

const (
	argonKeyLen  = 32
	saltLen      = 16
	argonVersion = argon2.Version // 0x13 = 19
	argonPrefix  = "$argon2id$"
	scramPrefix  = "$scram-sha-256$"
)

var b64 = base64.RawStdEncoding

// ErrBadHash means a stored password string is not in the format above.
var ErrBadHash = errors.New("malformed password hash")

// argonHash is the parsed first part.
type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// scramVerifier is the parsed second part (RFC 5802 section 3).
type scramVerifier struct {
	iter                 int
	salt                 []byte
	storedKey, serverKey []byte
}

// HashPassword makes the string stored as Account.PasswordHash: an argon2id
// hash with p's cost parameters and a SCRAM-SHA-256 verifier.
func HashPassword(password string, p Params) (string, error) {
	p = p.withDefaults()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, argonKeyLen)
	a := fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", argonPrefix, argonVersion, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))

	ssalt := make([]byte, saltLen)
	if _, err := rand.Read(ssalt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	v, err := newSCRAMVerifier(password, ssalt, p.SCRAMIterations)
	if err != nil {
		return "", err
	}
	return a + " " + v.String(), nil
}

// newSCRAMVerifier derives the RFC 5802 section 3 keys:
// SaltedPassword = Hi(Normalize(password), salt, i), ClientKey =
// HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey =
// HMAC(SaltedPassword, "Server Key"). Hi is PBKDF2 with HMAC-SHA-256.
func newSCRAMVerifier(password string, salt []byte, iter int) (scramVerifier, error) {
	salted, err := pbkdf2.Key(sha256.New, normalizePassword(password), salt, iter, sha256.Size)
	if err != nil {
		return scramVerifier{}, fmt.Errorf("scram key: %w", err)
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return scramVerifier{
		iter:      iter,
		salt:      salt,
		storedKey: stored[:],
		serverKey: hmacSHA256(salted, []byte("Server Key")),
	}, nil
}

// normalizePassword stands in for SASLprep (RFC 4013), which RFC 5802
// section 2.2 asks for: PRECIS OpaqueString (RFC 8265 section 4.2), its
// successor, gives the same result for every password a client is likely to
// send. A password it rejects (control characters) is used as is, so such a
// password still works with the plaintext mechanisms.
func normalizePassword(pw string) string {
	if s, err := precis.OpaqueString.String(pw); err == nil {
		return s
	}
	return pw
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func (v scramVerifier) String() string {
	return fmt.Sprintf("%si=%d$%s$%s$%s", scramPrefix, v.iter, b64.EncodeToString(v.salt),
		b64.EncodeToString(v.storedKey), b64.EncodeToString(v.serverKey))
}

// parseStored splits a stored password string. scram.iter is 0 when the
// string holds no SCRAM verifier.
func parseStored(s string) (argonHash, scramVerifier, error) {
	first, second, hasSecond := strings.Cut(s, " ")
	a, err := parseArgon(first)
	if err != nil {
		return argonHash{}, scramVerifier{}, err
	}
	var v scramVerifier
	if hasSecond {
		if v, err = parseSCRAM(second); err != nil {
			return argonHash{}, scramVerifier{}, err
		}
	}
	return a, v, nil
}

func parseArgon(s string) (argonHash, error) {
	rest, ok := strings.CutPrefix(s, argonPrefix)
	if !ok {
		return argonHash{}, fmt.Errorf("%w: not argon2id", ErrBadHash)
	}
	f := strings.Split(rest, "$")
	if len(f) != 4 {
		return argonHash{}, fmt.Errorf("%w: argon2id field count", ErrBadHash)
	}
	if f[0] != "v="+strconv.Itoa(argonVersion) {
		return argonHash{}, fmt.Errorf("%w: argon2 version %q", ErrBadHash, f[0])
	}
	var h argonHash
	var t, m, p uint64
	for _, kv := range strings.Split(f[1], ",") {
		k, val, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return argonHash{}, fmt.Errorf("%w: argon2 parameter %q", ErrBadHash, kv)
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return argonHash{}, fmt.Errorf("%w: argon2 parameter %q", ErrBadHash, kv)
		}
	}
	// Bounds keep a corrupt or hostile hash from making one login cost
	// gigabytes of memory or minutes of CPU.
	if t < 1 || t > 64 || p < 1 || p > 255 || m < 8*p || m > 4<<20 {
		return argonHash{}, fmt.Errorf("%w: argon2 parameters out of range", ErrBadHash)
	}
	h.time, h.memory, h.threads = uint32(t), uint32(m), uint8(p)
	var err error
	if h.salt, err = b64.DecodeString(f[2]); err != nil || len(h.salt) < 8 {
		return argonHash{}, fmt.Errorf("%w: argon2 salt", ErrBadHash)
	}
	if h.key, err = b64.DecodeString(f[3]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return argonHash{}, fmt.Errorf("%w: argon2 key", ErrBadHash)
	}
	return h, nil
}

func parseSCRAM(s string) (scramVerifier, error) {
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return scramVerifier{}, fmt.Errorf("%w: not scram-sha-256", ErrBadHash)
	}
	f := strings.Split(rest, "$")
	if len(f) != 4 {
		return scramVerifier{}, fmt.Errorf("%w: scram field count", ErrBadHash)
	}
	is, ok := strings.CutPrefix(f[0], "i=")
	iter, err := strconv.Atoi(is)
	if !ok || err != nil || iter < 1 || iter > 10_000_000 {
		return scramVerifier{}, fmt.Errorf("%w: scram iteration count", ErrBadHash)
	}
	v := scramVerifier{iter: iter}
	if v.salt, err = b64.DecodeString(f[1]); err != nil || len(v.salt) == 0 {
		return scramVerifier{}, fmt.Errorf("%w: scram salt", ErrBadHash)
	}
	if v.storedKey, err = b64.DecodeString(f[2]); err != nil || len(v.storedKey) != sha256.Size {
		return scramVerifier{}, fmt.Errorf("%w: scram StoredKey", ErrBadHash)
	}
	if v.serverKey, err = b64.DecodeString(f[3]); err != nil || len(v.serverKey) != sha256.Size {
		return scramVerifier{}, fmt.Errorf("%w: scram ServerKey", ErrBadHash)
	}
	return v, nil
}

// verify recomputes the argon2id key with the stored parameters and
// compares in constant time.
func (h argonHash) verify(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// HasSCRAM reports whether a stored password string carries a
// SCRAM-SHA-256 verifier.
func HasSCRAM(stored string) bool {
	_, v, err := parseStored(stored)
	return err == nil && v.iter > 0
}
