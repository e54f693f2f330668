package imapserver

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// command is one parsed client command.
type command struct {
	tag  string
	name string // upper case, without the UID prefix
	uid  bool   // "UID FETCH" and friends (RFC 9051 section 6.4.9)
	args any

	// okCode and okText, set by a handler, shape the tagged OK.
	okCode, okText string
}

type loginArgs struct{ user, pass string }

type authArgs struct {
	mech  string
	ir    []byte
	hasIR bool
}

type selectArgs struct {
	mailbox   string // as sent; decoded by the handler
	condstore bool
	qresync   *qresyncArgs
}

// qresyncArgs: RFC 7162 section 3.2.5.
type qresyncArgs struct {
	uidValidity uint32
	modSeq      uint64
	knownUIDs   numSet
	hasKnown    bool
	seqMatch    numSet // known sequence numbers
	uidMatch    numSet // their UIDs
	hasMatch    bool
}

type createArgs struct{ mailbox, use string }
type renameArgs struct{ from, to string }

type listArgs struct {
	lsub       bool
	selOpts    []string // RFC 5258 list-select-opts, upper case
	ref        string
	patterns   []string
	retOpts    []string // RFC 5258 list-return-opts names, upper case
	statusArgs []string // RETURN (STATUS (...)), RFC 5819
	extended   bool
}

type statusArgs struct {
	mailbox string
	items   []string
}

type appendMsg struct {
	flags  []string
	date   time.Time
	data   []byte
	binary bool // literal8 (RFC 3516 section 4.4)
}

type appendArgs struct {
	mailbox string
	msgs    []appendMsg
}

type storeArgs struct {
	set            numSet
	unchangedSince uint64
	hasUnchanged   bool
	mode           mailstore.StoreFlagsMode
	silent         bool
	flags          []string
}

type copyArgs struct {
	set     numSet
	mailbox string
}

type uidExpungeArgs struct{ set numSet }

// parseCommand parses one command. Any error is a *parseError, answered BAD.
func parseCommand(b []byte) (*command, error) {
	p := &parser{b: b}
	tag, err := p.tag()
	if err != nil {
		return nil, err
	}
	c := &command{tag: tag}
	if err := p.sp(); err != nil {
		return c, p.errf("missing command")
	}
	name, err := p.atom()
	if err != nil {
		return c, err
	}
	c.name = strings.ToUpper(name)
	if c.name == "UID" {
		// RFC 9051 section 6.4.9.
		if err := p.sp(); err != nil {
			return c, err
		}
		n, err := p.atom()
		if err != nil {
			return c, err
		}
		c.uid, c.name = true, strings.ToUpper(n)
		switch c.name {
		case "FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE":
		default:
			return c, p.errf("unknown UID command %s", c.name)
		}
	}
	if c.args, err = parseArgs(p, c); err != nil {
		return c, err
	}
	if err := p.end(); err != nil {
		return c, err
	}
	return c, nil
}

func parseArgs(p *parser, c *command) (any, error) {
	switch c.name {
	case "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "IDLE", "NAMESPACE":
		return nil, nil
	case "EXPUNGE":
		if !c.uid {
			return nil, nil
		}
		// RFC 4315 section 2.1: UID EXPUNGE sequence-set.
		if err := p.sp(); err != nil {
			return nil, err
		}
		s, err := p.seqSet()
		return uidExpungeArgs{s}, err
	case "COMPRESS":
		// RFC 4978 section 5: compress = "COMPRESS" SP algorithm.
		if err := p.sp(); err != nil {
			return nil, p.errf("COMPRESS needs an algorithm")
		}
		alg, err := p.atom()
		return strings.ToUpper(alg), err
	case "LOGIN":
		return parseLogin(p)
	case "AUTHENTICATE":
		return parseAuthenticate(p)
	case "ENABLE":
		// RFC 5161 section 3.1: ENABLE 1*(SP capability).
		var caps []string
		for p.take(' ') {
			a, err := p.atom()
			if err != nil {
				return nil, err
			}
			caps = append(caps, strings.ToUpper(a))
		}
		if len(caps) == 0 {
			return nil, p.errf("ENABLE needs a capability")
		}
		return caps, nil
	case "SELECT", "EXAMINE":
		return parseSelect(p)
	case "CREATE":
		return parseCreate(p)
	case "DELETE", "SUBSCRIBE", "UNSUBSCRIBE":
		if err := p.sp(); err != nil {
			return nil, err
		}
		return p.astring()
	case "RENAME":
		var a renameArgs
		var err error
		if err = p.sp(); err == nil {
			if a.from, err = p.astring(); err == nil {
				if err = p.sp(); err == nil {
					a.to, err = p.astring()
				}
			}
		}
		return a, err
	case "LIST", "LSUB":
		return parseList(p, c.name == "LSUB")
	case "STATUS":
		var a statusArgs
		var err error
		if err = p.sp(); err != nil {
			return nil, err
		}
		if a.mailbox, err = p.astring(); err != nil {
			return nil, err
		}
		if err = p.sp(); err != nil {
			return nil, err
		}
		a.items, err = p.atomList()
		if err == nil && len(a.items) == 0 {
			err = p.errf("STATUS needs items")
		}
		return a, err
	case "APPEND":
		return parseAppend(p)
	case "SEARCH":
		return parseSearch(p)
	case "FETCH":
		return parseFetch(p)
	case "STORE":
		return parseStore(p)
	case "COPY", "MOVE":
		var a copyArgs
		var err error
		if err = p.sp(); err != nil {
			return nil, err
		}
		if a.set, err = p.seqSet(); err != nil {
			return nil, err
		}
		if err = p.sp(); err != nil {
			return nil, err
		}
		a.mailbox, err = p.astring()
		return a, err
	case "ID":
		return nil, parseID(p)
	}
	return nil, p.errf("unknown command %s", c.name)
}

func parseLogin(p *parser) (loginArgs, error) {
	var a loginArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.user, err = p.astring(); err != nil {
		return a, err
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	a.pass, err = p.astring()
	return a, err
}

func parseAuthenticate(p *parser) (authArgs, error) {
	var a authArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.mech, err = p.atom(); err != nil {
		return a, err
	}
	a.mech = strings.ToUpper(a.mech)
	if p.take(' ') {
		// RFC 4959 section 3: initial response, "=" for an empty one.
		a.hasIR = true
		s := p.run(func(c byte) bool { return c != ' ' })
		if s != "=" {
			if a.ir, err = base64.StdEncoding.DecodeString(s); err != nil {
				return a, p.errf("initial response is not base64")
			}
		}
	}
	return a, nil
}

func parseSelect(p *parser) (selectArgs, error) {
	var a selectArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.mailbox, err = p.astring(); err != nil {
		return a, err
	}
	if !p.take(' ') {
		return a, nil
	}
	// RFC 4466 section 2.1 select-params; RFC 7162 CONDSTORE and QRESYNC.
	if err = p.expect('('); err != nil {
		return a, err
	}
	for first := true; !p.take(')'); first = false {
		if !first {
			if err = p.sp(); err != nil {
				return a, err
			}
		}
		switch {
		case p.takeWord("CONDSTORE"):
			a.condstore = true
		case p.takeWord("QRESYNC"):
			if a.qresync, err = parseQresync(p); err != nil {
				return a, err
			}
		default:
			return a, p.errf("unknown SELECT parameter")
		}
	}
	return a, nil
}

// parseQresync: RFC 7162 section 3.2.5, SP "(" uidvalidity SP mod-sequence-value
// [SP known-uids] [SP seq-match-data] ")".
func parseQresync(p *parser) (*qresyncArgs, error) {
	q := &qresyncArgs{}
	var err error
	if err = p.sp(); err != nil {
		return nil, err
	}
	if err = p.expect('('); err != nil {
		return nil, err
	}
	if q.uidValidity, err = p.nzNumber(); err != nil {
		return nil, err
	}
	if err = p.sp(); err != nil {
		return nil, err
	}
	if q.modSeq, err = p.number64(); err != nil {
		return nil, err
	}
	if p.take(' ') {
		if p.peek() != '(' {
			if q.knownUIDs, err = p.seqSet(); err != nil {
				return nil, err
			}
			q.hasKnown = true
		}
		if p.peek() == '(' || p.take(' ') {
			if err = p.expect('('); err != nil {
				return nil, err
			}
			if q.seqMatch, err = p.seqSet(); err != nil {
				return nil, err
			}
			if err = p.sp(); err != nil {
				return nil, err
			}
			if q.uidMatch, err = p.seqSet(); err != nil {
				return nil, err
			}
			if err = p.expect(')'); err != nil {
				return nil, err
			}
			q.hasMatch = true
		}
	}
	return q, p.expect(')')
}

func parseCreate(p *parser) (createArgs, error) {
	var a createArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.mailbox, err = p.astring(); err != nil {
		return a, err
	}
	if !p.take(' ') {
		return a, nil
	}
	// RFC 6154 section 3: create-param "USE" SP "(" [use-attr *(SP use-attr)] ")".
	if err = p.expect('('); err != nil {
		return a, err
	}
	if !p.takeWord("USE") {
		return a, p.errf("unknown CREATE parameter")
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	uses, err := p.flagList()
	if err != nil {
		return a, err
	}
	if len(uses) > 1 {
		return a, p.errf("only one special use per mailbox")
	}
	if len(uses) == 1 {
		a.use = uses[0]
	}
	return a, p.expect(')')
}

// parseList: RFC 9051 section 6.3.9 and RFC 5258 section 3.
func parseList(p *parser, lsub bool) (listArgs, error) {
	a := listArgs{lsub: lsub}
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if !lsub && p.peek() == '(' {
		a.extended = true
		if a.selOpts, err = p.atomList(); err != nil {
			return a, err
		}
		if err = p.sp(); err != nil {
			return a, err
		}
	}
	if a.ref, err = p.astring(); err != nil {
		return a, err
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	if !lsub && p.take('(') {
		a.extended = true
		for first := true; !p.take(')'); first = false {
			if !first {
				if err = p.sp(); err != nil {
					return a, err
				}
			}
			pat, err := p.listMailbox()
			if err != nil {
				return a, err
			}
			a.patterns = append(a.patterns, pat)
		}
	} else {
		pat, err := p.listMailbox()
		if err != nil {
			return a, err
		}
		a.patterns = []string{pat}
	}
	if !lsub && p.take(' ') {
		a.extended = true
		if !p.takeWord("RETURN") {
			return a, p.errf("expected RETURN")
		}
		if err = p.sp(); err != nil {
			return a, err
		}
		if err = p.expect('('); err != nil {
			return a, err
		}
		for first := true; !p.take(')'); first = false {
			if !first {
				if err = p.sp(); err != nil {
					return a, err
				}
			}
			opt, err := p.atom()
			if err != nil {
				return a, err
			}
			opt = strings.ToUpper(opt)
			a.retOpts = append(a.retOpts, opt)
			if opt == "STATUS" {
				// RFC 5819 section 2.
				if err = p.sp(); err != nil {
					return a, err
				}
				if a.statusArgs, err = p.atomList(); err != nil {
					return a, err
				}
			}
		}
	}
	return a, nil
}

// parseAppend: RFC 9051 section 6.3.12, RFC 3502 MULTIAPPEND, RFC 3516
// literal8.
func parseAppend(p *parser) (appendArgs, error) {
	var a appendArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.mailbox, err = p.astring(); err != nil {
		return a, err
	}
	for p.take(' ') {
		var m appendMsg
		if p.peek() == '(' {
			if m.flags, err = p.flagList(); err != nil {
				return a, err
			}
			if err = p.sp(); err != nil {
				return a, err
			}
		}
		if p.peek() == '"' {
			if m.date, err = p.dateTime(); err != nil {
				return a, err
			}
			if err = p.sp(); err != nil {
				return a, err
			}
		}
		if p.takeWord("UTF8") {
			// RFC 6855 section 4: append-data-ext "UTF8" SP "(" literal8 ")".
			if err = p.sp(); err != nil {
				return a, err
			}
			if err = p.expect('('); err != nil {
				return a, err
			}
			if m.data, _, err = p.literal(); err != nil {
				return a, err
			}
			m.binary = true
			if err = p.expect(')'); err != nil {
				return a, err
			}
		} else if m.data, m.binary, err = p.literal(); err != nil {
			return a, err
		}
		a.msgs = append(a.msgs, m)
	}
	if len(a.msgs) == 0 {
		return a, p.errf("APPEND needs a message literal")
	}
	return a, nil
}

// parseStore: RFC 9051 section 6.4.6, RFC 7162 section 3.1.3 UNCHANGEDSINCE.
func parseStore(p *parser) (storeArgs, error) {
	var a storeArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.set, err = p.seqSet(); err != nil {
		return a, err
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	if p.take('(') {
		if !p.takeWord("UNCHANGEDSINCE") {
			return a, p.errf("unknown STORE modifier")
		}
		if err = p.sp(); err != nil {
			return a, err
		}
		if a.unchangedSince, err = p.number64(); err != nil {
			return a, err
		}
		a.hasUnchanged = true
		if err = p.expect(')'); err != nil {
			return a, err
		}
		if err = p.sp(); err != nil {
			return a, err
		}
	}
	switch {
	case p.take('+'):
		a.mode = mailstore.FlagsAdd
	case p.take('-'):
		a.mode = mailstore.FlagsRemove
	default:
		a.mode = mailstore.FlagsReplace
	}
	item, err := p.atom()
	if err != nil {
		return a, err
	}
	switch strings.ToUpper(item) {
	case "FLAGS":
	case "FLAGS.SILENT":
		a.silent = true
	default:
		return a, p.errf("unknown STORE item %s", item)
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	if p.peek() == '(' {
		a.flags, err = p.flagList()
		return a, err
	}
	for {
		f, err := p.flag()
		if err != nil {
			return a, err
		}
		a.flags = append(a.flags, f)
		if !p.take(' ') {
			return a, nil
		}
	}
}

// parseID: RFC 2971 section 3.1, "ID" SP ("(" string SP nstring *(...) ")" / nil).
func parseID(p *parser) error {
	if err := p.sp(); err != nil {
		return err
	}
	if p.takeWord("NIL") {
		return nil
	}
	if err := p.expect('('); err != nil {
		return err
	}
	for first := true; !p.take(')'); first = false {
		if !first {
			if err := p.sp(); err != nil {
				return err
			}
		}
		if _, err := p.str(); err != nil {
			return err
		}
		if err := p.sp(); err != nil {
			return err
		}
		if _, _, err := p.nstring(); err != nil {
			return err
		}
	}
	return nil
}
