package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/http"
	"strings"
)

// requestHead is a client's request head as the front end (front.go)
// parsed it: spans of raw, which holds a copy of the head's bytes. Only
// what the front end takes is represented: an HTTP/1.1 request in
// origin-form without a body, upgrade or expectation, whose every line is
// well-formed. parseHead says no to everything else, and that request (and
// its connection) goes to net/http, which answers or rejects it as before.
type requestHead struct {
	raw            []byte
	method, target span
	host           span
	fields         []span // the lines passed on, "name: value", value trimmed
	forwardedFor   []span // the client's X-Forwarded-For values, in order
	forwardedProto span   // the client's X-Forwarded-Proto, when trusted and valid
	protos         int    // how many X-Forwarded-Proto fields came, when trusted
	close          bool   // Connection: close
}

// span is raw[start:end]; for a field, name is raw[start:colon] and value
// raw[value:end].
type span struct{ start, colon, value, end int32 }

func (s span) of(raw []byte) []byte { return raw[s.start:s.end] }

// reset empties h for the next request, keeping its slices' memory.
func (h *requestHead) reset() {
	h.raw = h.raw[:0]
	h.fields = h.fields[:0]
	h.forwardedFor = h.forwardedFor[:0]
	h.method, h.target, h.host, h.forwardedProto = span{}, span{}, span{}, span{}
	h.protos = 0
	h.close = false
}

// maxEmptyLines bounds the empty lines the front end skips before a
// request line. RFC 9112 (2.2) has a server ignore at least one: clients
// send one after a POST body, as old ones did, or before a request. More
// than a few are no client's: they go to net/http, which answers 400 and
// closes the connection.
const maxEmptyLines = 4

// emptyLines returns the length of the empty lines, CRLFs or bare LFs (as
// net/http takes line ends), at the start of b: maxEmptyLines of them at
// most. A CR not yet followed by its LF is not counted.
func emptyLines(b []byte) int {
	n := 0
	for range maxEmptyLines {
		switch {
		case len(b) > n && b[n] == '\n':
			n++
		case len(b) > n+1 && b[n] == '\r' && b[n+1] == '\n':
			n += 2
		default:
			return n
		}
	}
	return n
}

// headEnd returns the length of the head at the start of b (through its
// blank line), 0 while it is incomplete, or -1 when a line ends in a bare
// LF (which the front end leaves to net/http).
func headEnd(b []byte) int {
	from := 0
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return 0
		}
		i += from
		if i == 0 || b[i-1] != '\r' {
			return -1
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
		if i == 1 { // an empty first line
			return -1
		}
		from = i + 1
	}
}

// parseHead parses raw, a complete head (headEnd), into h and reports
// whether the front end takes the request. h.raw must be raw.
func parseHead(h *requestHead, trustForwardedFor bool) bool {
	raw := h.raw
	line, rest, ok := cutLine(raw, 0)
	if !ok || !h.parseRequestLine(raw, line) {
		return false
	}
	hosts := 0
	for {
		var l span
		l, rest, ok = cutLine(raw, rest)
		if !ok {
			return false
		}
		if l.start == l.end {
			break // the blank line
		}
		f, ok := parseField(raw, l)
		if !ok {
			return false
		}
		switch fieldKindOf(f.name(raw)) {
		case fieldPlain:
			h.fields = append(h.fields, f)
		case fieldHost:
			hosts++
			if !validHost(f.val(raw)) {
				return false
			}
			h.host = f
		case fieldContentLength:
			if v := f.val(raw); len(v) != 1 || v[0] != '0' {
				return false // a body: net/http streams it
			}
		case fieldConnection:
			closing, ok := connectionClose(f.val(raw))
			if !ok {
				return false
			}
			h.close = h.close || closing
		case fieldForwardedFor:
			if trustForwardedFor {
				h.forwardedFor = append(h.forwardedFor, f)
			}
		case fieldForwardedProto:
			if trustForwardedFor {
				h.protos++
				h.forwardedProto = f
			}
		case fieldBalancer:
			if trustForwardedFor {
				h.fields = append(h.fields, f)
			}
		case fieldDropped:
		default: // fieldRefused
			return false
		}
	}
	return hosts == 1
}

// cutLine returns the line starting at from (without its CRLF) and where
// the next one starts.
func cutLine(raw []byte, from int) (span, int, bool) {
	i := bytes.IndexByte(raw[from:], '\n')
	if i < 1 {
		return span{}, 0, false
	}
	end := from + i - 1 // the CR
	return span{start: int32(from), end: int32(end)}, from + i + 1, true
}

// parseRequestLine takes "METHOD /origin-form HTTP/1.1" only, and no
// CONNECT, which net/http's path refuses (notServed).
func (h *requestHead) parseRequestLine(raw []byte, l span) bool {
	b := l.of(raw)
	sp := bytes.IndexByte(b, ' ')
	if sp < 1 || !isToken(b[:sp]) || string(b[:sp]) == http.MethodConnect {
		return false
	}
	const proto = " HTTP/1.1"
	if len(b) < sp+1+1+len(proto) || string(b[len(b)-len(proto):]) != proto {
		return false
	}
	target := b[sp+1 : len(b)-len(proto)]
	if target[0] != '/' || !validTarget(target) {
		return false
	}
	h.method = span{start: l.start, end: l.start + int32(sp)}
	h.target = span{start: l.start + int32(sp) + 1, end: l.end - int32(len(proto))}
	return true
}

// parseField splits "name: value" (optional whitespace around the value).
func parseField(raw []byte, l span) (span, bool) {
	b := l.of(raw)
	colon := bytes.IndexByte(b, ':')
	if colon < 1 || !isToken(b[:colon]) {
		return span{}, false // no name, or whitespace before the colon, or an obs-fold
	}
	v, end := colon+1, len(b)
	for v < end && (b[v] == ' ' || b[v] == '\t') {
		v++
	}
	for end > v && (b[end-1] == ' ' || b[end-1] == '\t') {
		end--
	}
	if !validValue(b[v:end]) {
		return span{}, false
	}
	return span{start: l.start, colon: l.start + int32(colon), value: l.start + int32(v), end: l.start + int32(end)}, true
}

// validValue: no control character but HTAB, and no DEL (RFC 9110's
// field-value; obs-text is let through, as net/http does). Eight bytes at a
// time while none is below a space or DEL (the "hasless" and "haszero"
// tests of Bit Twiddling Hacks, exact for "any"); the byte loop decides
// from the first word that has one, since HTAB is allowed.
func validValue(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		del := x ^ (ones * 0x7f) // a zero byte where x has DEL
		if ((x-ones*' ')&^x|(del-ones)&^del)&highs != 0 {
			break
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func (s span) name(raw []byte) []byte { return raw[s.start:s.colon] }
func (s span) val(raw []byte) []byte  { return raw[s.value:s.end] }

// connectionClose reads a Connection field value: whether it says close,
// and ok when it names nothing but close and keep-alive (naming anything
// else, upgrade or a field to drop, leaves the message to net/http).
func connectionClose(v []byte) (closing, ok bool) {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte{','})
		t = bytes.Trim(t, " \t")
		switch {
		case len(t) == 0, asciiEqualFold(t, "keep-alive"):
		case asciiEqualFold(t, "close"):
			closing = true
		default:
			return false, false
		}
	}
	return closing, true
}

type fieldKind uint8

const (
	fieldPlain          fieldKind = iota // passed on
	fieldDropped                         // hop-by-hop, or the proxy's to set
	fieldRefused                         // the front end leaves the request to net/http
	fieldHost                            // written first
	fieldContentLength                   // 0 only
	fieldConnection                      // close and keep-alive only
	fieldForwardedFor                    // appended to when trusted
	fieldForwardedProto                  // kept when trusted (trustedProto)
	fieldBalancer                        // a balancer's word on the client: kept when trusted (balancerField)
	fieldDate                            // a response's: kept, and none added
)

// specialFields are the field names the front end does not pass on as
// they are, with what each is in a request and in a worker's response;
// every other field is plain. hopByHop and forwardedField say the same
// for net/http's canonical keys (TestFieldKinds holds them together).
var specialFields = []specialField{
	{"te", fieldRefused, fieldDropped}, // a request's may ask for trailers: net/http's path handles it
	{"host", fieldHost, fieldPlain},
	{"date", fieldPlain, fieldDate},
	{"close", fieldRefused, fieldPlain}, // hop-by-hop when Connection: close names it
	{"expect", fieldRefused, fieldPlain},
	{"upgrade", fieldRefused, fieldDropped},
	{"trailer", fieldDropped, fieldRefused}, // a response with trailers is not plain
	{"forwarded", fieldDropped, fieldPlain},
	{"x-real-ip", fieldBalancer, fieldPlain},
	{"connection", fieldConnection, fieldConnection},
	{"keep-alive", fieldDropped, fieldDropped},
	{"content-length", fieldContentLength, fieldContentLength},
	{"x-forwarded-for", fieldForwardedFor, fieldPlain},
	{"x-forwarded-ssl", fieldBalancer, fieldPlain},
	{"proxy-connection", fieldDropped, fieldDropped},
	{"x-forwarded-host", fieldDropped, fieldPlain},
	{"x-forwarded-port", fieldBalancer, fieldPlain},
	{"transfer-encoding", fieldRefused, fieldRefused},
	{"x-forwarded-proto", fieldForwardedProto, fieldPlain},
	{"proxy-authenticate", fieldDropped, fieldDropped},
	{"x-forwarded-prefix", fieldBalancer, fieldPlain},
	{"x-forwarded-scheme", fieldBalancer, fieldPlain},
	{"proxy-authorization", fieldDropped, fieldDropped},
}

// specialByLength indexes specialFields by name length: a field is
// compared with at most three names (those of 18 bytes), as a switch on
// its length would.
var specialByLength = func() (t [20][]specialField) {
	for _, f := range specialFields {
		t[len(f.name)] = append(t[len(f.name)], f)
	}
	return t
}()

type specialField struct {
	name              string // lower case
	request, response fieldKind
}

// special finds name in specialFields; nil when it is plain.
func special(name []byte) *specialField {
	if len(name) >= len(specialByLength) {
		return nil
	}
	fs := specialByLength[len(name)]
	for i := range fs {
		if asciiEqualFold(name, fs[i].name) {
			return &fs[i]
		}
	}
	return nil
}

// fieldKindOf classifies a request's field name.
func fieldKindOf(name []byte) fieldKind {
	if f := special(name); f != nil {
		return f.request
	}
	if bytes.IndexByte(name, '_') >= 0 && underscoreForwarding(name) {
		return fieldDropped
	}
	return fieldPlain
}

// underscoreForwarding reports whether name, with its underscores read as
// dashes, is a forwarding field: one of specialFields named x-… (the
// forwarding and balancer fields, X-Forwarded-Host with them). Servers
// that hand fields to apps as CGI variables (HTTP_X_REAL_IP) make
// X_Real_IP and X-Real-IP one: such a spelling, which no balancer sends,
// is dropped, trusted or not, as nginx drops every name with an
// underscore. The dashed copy is on the stack: special names are shorter
// than specialByLength.
func underscoreForwarding(name []byte) bool {
	var dashed [len(specialByLength)]byte
	if len(name) >= len(dashed) {
		return false
	}
	for i, c := range name {
		if c == '_' {
			c = '-'
		}
		dashed[i] = c
	}
	f := special(dashed[:len(name)])
	return f != nil && strings.HasPrefix(f.name, "x-")
}

// responseFieldKind classifies a worker's response field name, as
// respond does with hopByHop: dropped, refused (Transfer-Encoding,
// Trailer: not plain), the framing and Connection fields, Date, or passed
// on.
func responseFieldKind(name []byte) fieldKind {
	if f := special(name); f != nil {
		return f.response
	}
	return fieldPlain
}

// writeHead writes the head the worker gets, as writeRequest does for a
// request without a body: the request line, Host, the client's fields in
// their order, the forwarding fields, and Content-Length: 0 for methods
// that usually carry a body.
func (h *requestHead) writeHead(bw *bufio.Writer, clientIP string) error {
	raw, w := h.raw, head{bw}
	_, _ = bw.Write(h.method.of(raw))
	w.str(" ")
	_, _ = bw.Write(h.target.of(raw))
	w.str(" HTTP/1.1\r\n")
	host := h.host.val(raw)
	writeField(bw, "Host", host)
	for _, f := range h.fields {
		writeField(bw, f.name(raw), f.val(raw))
	}
	if clientIP != "" { // as writeForwarded: none when the address has no IP
		w.str("X-Forwarded-For: ")
		for _, f := range h.forwardedFor {
			_, _ = bw.Write(f.val(raw))
			w.str(", ")
		}
		w.str(clientIP)
		w.str("\r\n")
	}
	writeField(bw, "X-Forwarded-Host", host)
	if v := h.forwardedProto.val(raw); h.protos == 1 && trustedProto(v) {
		writeField(bw, "X-Forwarded-Proto", v)
	} else {
		w.str("X-Forwarded-Proto: http\r\n")
	}
	if m := h.method.of(raw); string(m) != http.MethodGet && string(m) != http.MethodHead {
		w.str("Content-Length: 0\r\n")
	}
	w.str("\r\n")
	return bw.Flush()
}

// isToken: RFC 9110's token (methods, field names).
func isToken[T string | []byte](b T) bool {
	for i := range len(b) {
		if !tokenByte[b[i]] {
			return false
		}
	}
	return len(b) > 0
}

// validTarget: visible ASCII, and every % followed by two hex digits (Go's
// server rejects a bad escape with 400; so must this path).
func validTarget(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		if c == '%' && (i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2])) {
			return false
		}
	}
	return true
}

// validHost: what Go's server accepts in Host (httpguts.ValidHostHeader),
// and not empty.
func validHost(b []byte) bool {
	for _, c := range b {
		if !hostByte[c] {
			return false
		}
	}
	return len(b) > 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// asciiEqualFold compares b with lower, which is lower-case ASCII.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

var tokenByte, hostByte [256]bool

func init() {
	for c := '0'; c <= 'z'; c++ {
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			tokenByte[c], hostByte[c] = true, true
		}
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tokenByte[c] = true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		hostByte[c] = true
	}
}
