package message

// PartAt finds a body part by IMAP part number path (RFC 9051 section
// 6.4.5), e.g. []int{1,2}. A message/rfc822 part's children are those of
// its enclosed message. nil if none. An empty path is the message itself.
//
// RFC 9051 section 6.4.5: the parts of a multipart are numbered from 1; a
// message that is not multipart has only part 1, its body; a part of type
// message/rfc822 or message/global is numbered through to the body of the
// message it encloses, so n.1 is that message's first part (or its whole
// body when that is not multipart).
func PartAt(root *Part, path []int) *Part {
	cur := root
	for i, n := range path {
		if cur == nil || n < 1 {
			return nil
		}
		if cur.Type == "multipart" {
			if n > len(cur.Children) {
				return nil
			}
			cur = cur.Children[n-1]
		} else if n != 1 {
			return nil
		}
		if i == len(path)-1 {
			return cur
		}
		switch {
		case cur.Type == "multipart":
			// The next number picks one of its children.
		case cur.Message != nil:
			cur = cur.Message
		default:
			return nil
		}
	}
	return cur
}

// HeaderBytes returns a part's header block, including the empty line that
// ends it (when the raw bytes have one). For the root part this is the
// message header (BODY[HEADER]); for a body part, its MIME header
// (BODY[n.MIME]); for the Message of a message/rfc822 part, the enclosed
// message's header (BODY[n.HEADER]).
func HeaderBytes(raw []byte, p *Part) []byte {
	if p == nil {
		return nil
	}
	hs, bs := clamp(p.HeaderStart, len(raw)), clamp(p.BodyStart, len(raw))
	if bs < hs {
		bs = hs
	}
	return raw[hs:bs]
}

// BodyBytes returns a part's body as on the wire (still transfer-encoded).
// For the root part this is BODY[TEXT]; for a body part, BODY[n]; for the
// Message of a message/rfc822 part, the enclosed message's text
// (BODY[n.TEXT]).
func BodyBytes(raw []byte, p *Part) []byte {
	if p == nil {
		return nil
	}
	bs, be := clamp(p.BodyStart, len(raw)), clamp(p.BodyEnd, len(raw))
	if be < bs {
		be = bs
	}
	return raw[bs:be]
}

func clamp(off int64, n int) int {
	switch {
	case off < 0:
		return 0
	case off > int64(n):
		return n
	}
	return int(off)
}
