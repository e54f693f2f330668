package mailstore

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/roost-mail/roost/internal/message"
)

// DecodeCache turns the stored JSON of an ENVELOPE or a BODYSTRUCTURE
// back into its value, remembering the most recent ones. Both describe a
// message's immutable content, and a session FETCHes the same messages
// again and again (every SELECT of a mail client): decoding JSON was half
// the CPU of reading 20 envelopes. The key is the JSON text itself, so a
// hit is exact whatever the backend's row ids.
//
// The values it returns are shared between callers and must not be
// modified (Message.Envelope and Message.Body say so too).
type DecodeCache struct {
	env  jsonCache[message.Envelope]
	body jsonCache[message.Part]
}

// decodeCacheSize bounds each cache: a few thousand entries of a few
// hundred bytes of key and a decoded value each, some megabytes.
const decodeCacheSize = 4096

// Envelope decodes the stored form of an ENVELOPE.
func (c *DecodeCache) Envelope(js []byte) (*message.Envelope, error) {
	v, err := c.env.get(js)
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return v, nil
}

// Body decodes the stored form of a BODYSTRUCTURE.
func (c *DecodeCache) Body(js []byte) (*message.Part, error) {
	v, err := c.body.get(js)
	if err != nil {
		return nil, fmt.Errorf("decode body structure: %w", err)
	}
	return v, nil
}

// jsonCache is a bounded map from JSON text to its decoded value, evicting
// the oldest entry first (a ring of keys in insertion order).
type jsonCache[T any] struct {
	mu   sync.Mutex
	m    map[string]*T // guarded by mu
	ring []string      // guarded by mu; keys in insertion order
	next int           // guarded by mu; ring slot to reuse next once full
}

func (c *jsonCache[T]) get(js []byte) (*T, error) {
	c.mu.Lock()
	// The map lookup with string(js) does not allocate.
	v := c.m[string(js)]
	c.mu.Unlock()
	if v != nil {
		return v, nil
	}
	v = new(T)
	if err := json.Unmarshal(js, v); err != nil {
		return nil, err
	}
	key := string(js)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*T, decodeCacheSize)
	}
	if _, ok := c.m[key]; ok {
		return v, nil
	}
	if len(c.ring) < decodeCacheSize {
		c.ring = append(c.ring, key)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = key
		c.next = (c.next + 1) % decodeCacheSize
	}
	c.m[key] = v
	return v, nil
}
