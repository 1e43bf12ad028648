package sign

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// Limits of the Python emulation. Both make PythonCompactJSON refuse input,
// which only means the legacy compact-JSON variant is not tried for that
// request: refusing is always the safe direction.
const (
	// maxPyJSONDepth bounds nesting of arrays and objects. CPython's
	// recursion limit (1000 by default, fewer in practice) refuses deeper
	// input anyway; a fixed, lower bound keeps our own stack use small and
	// independent of how CPython happened to be called.
	maxPyJSONDepth = 512

	// maxPyIntDigits is CPython's default sys.get_int_max_str_digits() (3.11
	// and later): json.loads raises ValueError for an integer literal with
	// more digits, sign not counted.
	maxPyIntDigits = 4300

	// dupMapThreshold is the member count above which duplicate-key
	// detection switches from a linear scan to a map, so an object with many
	// keys costs O(n) rather than O(n²).
	dupMapThreshold = 8
)

// PythonCompactJSON re-serialises body exactly as CPython's
//
//	json.dumps(json.loads(body), separators=(",", ":"))
//
// would, with json's defaults otherwise (ensure_ascii=True, allow_nan=True,
// strict=True, no sort). Old Python clients signed that string instead of the
// bytes they sent, so the gateway recomputes it to check that legacy
// variant. ok is false whenever Python would raise (or the input exceeds
// this package's nesting bound); the variant is then simply not tried.
//
// The emulation covers, as CPython does:
//   - bytes decoding as json.loads(bytes) does it: UTF-8 with an optional
//     BOM, or UTF-16/UTF-32 detected from a BOM or from NUL bytes in the first
//     four, all with the "surrogatepass" error handler (lone surrogates pass);
//   - key order as sent; a duplicate key keeps the first key's position and
//     the last value (dict semantics);
//   - integers keep their digits (Python ints are unbounded, up to 4300
//     digits), "-0" becomes "0";
//   - numbers with a fraction or exponent become floats, printed as repr()
//     does: shortest round-trip digits, fixed notation with at least one
//     decimal when the decimal exponent is in [-4, 16), else "1e+16" style;
//     overflow gives Infinity;
//   - the literals NaN, Infinity and -Infinity, read and written as such;
//   - strings re-escaped with ensure_ascii: \" \\ \n \r \t \b \f, other
//     characters below 0x20 and from 0x7f up as lower-case \uXXXX (UTF-16
//     surrogate pairs above U+FFFF); "/" is not escaped.
func PythonCompactJSON(body []byte) (out []byte, ok bool) {
	text, ok := pyDecodeBytes(body)
	if !ok {
		return nil, false
	}
	p := pyParser{s: text, out: make([]byte, 0, len(text))}
	p.skipWS()
	if !p.value(0) {
		return nil, false
	}
	p.skipWS()
	if p.i != len(p.s) {
		return nil, false // "Extra data"
	}
	return p.out, true
}

// pyDecodeBytes turns body into text the way json.loads(bytes) does:
// json.detect_encoding picks the codec, then bytes.decode(codec,
// "surrogatepass"). The result is "generalised UTF-8": valid UTF-8 except
// that surrogate code points (which surrogatepass lets through) may appear as
// their 3-byte encodings ED A0..BF 80..BF. For UTF-8 input without a BOM the
// input slice itself is returned after validation.
func pyDecodeBytes(b []byte) ([]byte, bool) {
	switch {
	// The order matters: the UTF-32-LE BOM starts with the UTF-16-LE one.
	case bytes.HasPrefix(b, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return transcodeUTF32(b[4:], true)
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0x00, 0x00}):
		return transcodeUTF32(b[4:], false)
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return transcodeUTF16(b[2:], true)
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return transcodeUTF16(b[2:], false)
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		// "utf-8-sig" drops one BOM; json.loads(str) would refuse it, but
		// bytes never reach that check.
		b = b[3:]
		return b, validGenUTF8(b)
	}
	// No BOM: detect_encoding looks for NUL bytes, which ASCII JSON text
	// cannot start with.
	if len(b) >= 4 {
		switch {
		case b[0] == 0 && b[1] != 0:
			return transcodeUTF16(b, true)
		case b[0] == 0:
			return transcodeUTF32(b, true)
		case b[1] == 0 && (b[2] != 0 || b[3] != 0):
			return transcodeUTF16(b, false)
		case b[1] == 0:
			return transcodeUTF32(b, false)
		}
	} else if len(b) == 2 {
		switch {
		case b[0] == 0:
			return transcodeUTF16(b, true)
		case b[1] == 0:
			return transcodeUTF16(b, false)
		}
	}
	return b, validGenUTF8(b)
}

// validGenUTF8 reports whether b is UTF-8 as Python's decoder with
// surrogatepass accepts it: well-formed UTF-8, plus 3-byte encodings of
// surrogates.
func validGenUTF8(b []byte) bool {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			if !isEncodedSurrogate(b[i:]) {
				return false
			}
			n = 3
		}
		i += n
	}
	return true
}

// isEncodedSurrogate reports whether b starts with ED A0..BF 80..BF, the
// UTF-8 form of U+D800..U+DFFF that only surrogatepass accepts.
func isEncodedSurrogate(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xED && b[1] >= 0xA0 && b[1] <= 0xBF && b[2]&0xC0 == 0x80
}

// decodeGen decodes one code point from validated generalised UTF-8.
func decodeGen(b []byte) (rune, int) {
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n == 1 && isEncodedSurrogate(b) {
		return rune(b[1]&0x3F)<<6 | rune(b[2]&0x3F) | 0xD000, 3
	}
	return r, n
}

// appendGen appends r as generalised UTF-8; unlike utf8.AppendRune it keeps
// surrogates instead of replacing them with U+FFFD.
func appendGen(dst []byte, r rune) []byte {
	if 0xD800 <= r && r <= 0xDFFF {
		return append(dst, 0xED, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F) // #nosec G115 -- masked to six bits
	}
	return utf8.AppendRune(dst, r)
}

// transcodeUTF16 mirrors Python's UTF-16 decoder with surrogatepass: valid
// pairs combine into one code point, lone surrogates pass through, an odd
// trailing byte is an error.
func transcodeUTF16(b []byte, bigEndian bool) ([]byte, bool) {
	if len(b)%2 != 0 {
		return nil, false
	}
	unit := func(i int) rune {
		if bigEndian {
			return rune(b[i])<<8 | rune(b[i+1])
		}
		return rune(b[i+1])<<8 | rune(b[i])
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 2 {
		r := unit(i)
		if 0xD800 <= r && r <= 0xDBFF && i+3 < len(b) {
			if r2 := unit(i + 2); 0xDC00 <= r2 && r2 <= 0xDFFF {
				out = utf8.AppendRune(out, 0x10000+(r-0xD800)<<10+(r2-0xDC00))
				i += 2
				continue
			}
		}
		out = appendGen(out, r)
	}
	return out, true
}

// transcodeUTF32 mirrors Python's UTF-32 decoder with surrogatepass: each
// unit is one code point (surrogates included, never combined), values above
// U+10FFFF and a length that is not a multiple of 4 are errors.
func transcodeUTF32(b []byte, bigEndian bool) ([]byte, bool) {
	if len(b)%4 != 0 {
		return nil, false
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 4 {
		var u uint32
		if bigEndian {
			u = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		} else {
			u = uint32(b[i+3])<<24 | uint32(b[i+2])<<16 | uint32(b[i+1])<<8 | uint32(b[i])
		}
		if u > utf8.MaxRune {
			return nil, false
		}
		out = appendGen(out, rune(u))
	}
	return out, true
}

// pyParser is a recursive-descent parser over generalised UTF-8 that writes
// the compact re-serialisation as it goes, following CPython's C scanner
// (Modules/_json.c) token by token.
type pyParser struct {
	s   []byte
	i   int
	out []byte

	// keys holds the decoded keys of the objects currently open, as
	// generalised UTF-8; members records each member's key span in keys and
	// its "key":value span in out. Both are stacks: an object truncates them
	// back to where it started when it closes.
	keys    []byte
	members []pyMember
}

// pyMember is one "key":value of the object being parsed.
type pyMember struct {
	keyStart, keyEnd int // in keys
	outStart, outEnd int // in out
	first            int // index (in members) of this key's first occurrence
}

// skipWS skips JSON whitespace, which for Python is exactly these four bytes.
func (p *pyParser) skipWS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// literal consumes lit if the input continues with it and echoes it.
func (p *pyParser) literal(lit string) bool {
	if !bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
		return false
	}
	p.i += len(lit)
	p.out = append(p.out, lit...)
	return true
}

// value parses one JSON value at p.i, dispatching on its first byte as
// CPython's scan_once does. depth counts the containers already open.
func (p *pyParser) value(depth int) bool {
	if p.i >= len(p.s) {
		return false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		return p.str(nil)
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == 'n':
		return p.literal("null")
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'N':
		return p.literal("NaN")
	case c == 'I':
		return p.literal("Infinity")
	case c == '-' && bytes.HasPrefix(p.s[p.i:], []byte("-Infinity")):
		return p.literal("-Infinity")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return false
}

// array parses an array at p.i; no trailing comma, as in CPython.
func (p *pyParser) array(depth int) bool {
	if depth > maxPyJSONDepth {
		return false
	}
	p.i++ // '['
	p.out = append(p.out, '[')
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.out = append(p.out, ']')
		return true
	}
	for {
		if !p.value(depth) {
			return false
		}
		p.skipWS()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ']':
			p.i++
			p.out = append(p.out, ']')
			return true
		case ',':
			p.i++
			p.out = append(p.out, ',')
			p.skipWS()
		default:
			return false
		}
	}
}

// object parses an object at p.i, then applies dict semantics to repeated
// keys (see rebuildObject).
func (p *pyParser) object(depth int) bool {
	if depth > maxPyJSONDepth {
		return false
	}
	p.i++ // '{'
	objStart := len(p.out)
	p.out = append(p.out, '{')
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.out = append(p.out, '}')
		return true
	}
	keysBase, membersBase := len(p.keys), len(p.members)
	defer func() {
		p.keys = p.keys[:keysBase]
		p.members = p.members[:membersBase]
	}()
	var index map[string]int // decoded key -> index of first occurrence; built lazily
	dup := false
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return false // "Expecting property name enclosed in double quotes"
		}
		m := pyMember{keyStart: len(p.keys), outStart: len(p.out)}
		if !p.str(&p.keys) {
			return false
		}
		m.keyEnd = len(p.keys)
		p.skipWS()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return false
		}
		p.i++
		p.out = append(p.out, ':')
		p.skipWS()
		if !p.value(depth) {
			return false
		}
		m.outEnd = len(p.out)

		// Python builds a dict: a repeated key keeps its first position and
		// takes the new value. Keys compare as decoded strings, so "\u00e9"
		// and a raw "é" are the same key.
		m.first = len(p.members)
		key := p.keys[m.keyStart:m.keyEnd]
		n := len(p.members) - membersBase
		switch {
		case index != nil:
			if f, seen := index[string(key)]; seen {
				m.first = f
			} else {
				index[string(key)] = m.first
			}
		case n >= dupMapThreshold:
			index = make(map[string]int, 2*n)
			for j := membersBase; j < len(p.members); j++ {
				pm := p.members[j]
				if pm.first == j {
					index[string(p.keys[pm.keyStart:pm.keyEnd])] = j
				}
			}
			if f, seen := index[string(key)]; seen {
				m.first = f
			} else {
				index[string(key)] = m.first
			}
		default:
			for j := membersBase; j < len(p.members); j++ {
				pm := p.members[j]
				if pm.first == j && bytes.Equal(p.keys[pm.keyStart:pm.keyEnd], key) {
					m.first = j
					break
				}
			}
		}
		if m.first != len(p.members) {
			dup = true
		}
		p.members = append(p.members, m)

		p.skipWS()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case '}':
			p.i++
			p.out = append(p.out, '}')
			if dup {
				p.rebuildObject(objStart, membersBase)
			}
			return true
		case ',':
			p.i++
			p.out = append(p.out, ',')
			p.skipWS()
		default:
			return false
		}
	}
}

// rebuildObject rewrites the object serialised at out[objStart:] after a
// duplicate key: each distinct key once, at its first position, with the
// serialisation of its last occurrence (equal keys serialise identically,
// so the last member's "key":value span can be reused whole).
func (p *pyParser) rebuildObject(objStart, membersBase int) {
	ms := p.members[membersBase:]
	last := make(map[int]int, len(ms)) // first-occurrence index -> last index
	for j := range ms {
		last[ms[j].first] = membersBase + j
	}
	old := append([]byte(nil), p.out[objStart:]...)
	p.out = append(p.out[:objStart], '{')
	wrote := false
	for j := range ms {
		idx := membersBase + j
		if ms[j].first != idx {
			continue
		}
		if wrote {
			p.out = append(p.out, ',')
		}
		lm := p.members[last[idx]]
		p.out = append(p.out, old[lm.outStart-objStart:lm.outEnd-objStart]...)
		wrote = true
	}
	p.out = append(p.out, '}')
}

// str parses a string at p.i (which holds '"'), writes it re-escaped with
// ensure_ascii, and if dec is not nil appends the decoded value to *dec (for
// key comparison). Like CPython's scanstring with strict=True it refuses raw
// control characters below 0x20 and unknown escapes, and joins "\uD8xx\uDCxx"
// escape pairs into one code point; lone surrogate escapes are kept.
func (p *pyParser) str(dec *[]byte) bool {
	p.i++ // opening quote
	p.out = append(p.out, '"')
	for {
		if p.i >= len(p.s) {
			return false // "Unterminated string"
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			p.out = append(p.out, '"')
			return true
		case c < 0x20:
			return false // "Invalid control character"
		case c == '\\':
			r, ok := p.escape()
			if !ok {
				return false
			}
			p.appendEscaped(r)
			if dec != nil {
				*dec = appendGen(*dec, r)
			}
		case c < utf8.RuneSelf:
			p.i++
			p.appendEscaped(rune(c))
			if dec != nil {
				*dec = append(*dec, c)
			}
		default:
			r, n := decodeGen(p.s[p.i:])
			if dec != nil {
				*dec = append(*dec, p.s[p.i:p.i+n]...)
			}
			p.i += n
			p.appendEscaped(r)
		}
	}
}

// escape decodes the backslash escape at p.i.
func (p *pyParser) escape() (rune, bool) {
	if p.i+1 >= len(p.s) {
		return 0, false
	}
	c := p.s[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case 'u':
	default:
		return 0, false // "Invalid \escape"
	}
	r, ok := p.hex4()
	if !ok {
		return 0, false
	}
	// CPython joins a high surrogate with an immediately following \u low
	// surrogate; anything else leaves the high surrogate alone and the next
	// escape is read on its own (an invalid one fails either way).
	if 0xD800 <= r && r <= 0xDBFF && p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
		save := p.i
		p.i += 2
		r2, ok := p.hex4()
		if !ok {
			return 0, false // "Invalid \uXXXX escape"
		}
		if 0xDC00 <= r2 && r2 <= 0xDFFF {
			return 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00), true
		}
		p.i = save
	}
	return r, true
}

// hex4 reads exactly four hex digits (either case) at p.i.
func (p *pyParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

const lowerHex = "0123456789abcdef"

// appendEscaped writes r as json.dumps(ensure_ascii=True) does
// (py_encode_basestring_ascii): printable ASCII except '"' and '\' as is,
// short escapes for the usual five controls, everything else \uXXXX in lower
// case with surrogate pairs above U+FFFF. 0x7f is escaped; '/' is not.
func (p *pyParser) appendEscaped(r rune) {
	switch {
	case r == '"':
		p.out = append(p.out, '\\', '"')
	case r == '\\':
		p.out = append(p.out, '\\', '\\')
	case r == '\n':
		p.out = append(p.out, '\\', 'n')
	case r == '\r':
		p.out = append(p.out, '\\', 'r')
	case r == '\t':
		p.out = append(p.out, '\\', 't')
	case r == '\b':
		p.out = append(p.out, '\\', 'b')
	case r == '\f':
		p.out = append(p.out, '\\', 'f')
	case ' ' <= r && r <= '~':
		p.out = append(p.out, byte(r))
	case r >= 0x10000:
		r -= 0x10000
		p.appendU(0xD800 | (r>>10)&0x3FF)
		p.appendU(0xDC00 | r&0x3FF)
	default:
		p.appendU(r)
	}
}

// appendU writes the 16-bit unit u as a lower-case \uXXXX escape.
func (p *pyParser) appendU(u rune) {
	p.out = append(p.out, '\\', 'u',
		lowerHex[u>>12&0xF], lowerHex[u>>8&0xF], lowerHex[u>>4&0xF], lowerHex[u&0xF])
}

// number parses a JSON number with CPython's grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? . Where CPython would stop
// early and then fail on the leftover ("01", "1.", "1e"), this fails at once:
// no character that can follow a value starts with '0'-'9', '.', 'e' or 'E'.
func (p *pyParser) number() bool {
	s, start := p.s, p.i
	i := start
	if s[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	intDigits := i - intStart
	isFloat := false
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		isFloat = true
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		isFloat = true
	}
	// Python's scanner stops at the first leading-zero follower too ("01" is
	// 0 then extra data), which fails in every context.
	if i < len(s) && '0' <= s[i] && s[i] <= '9' {
		return false
	}
	p.i = i
	lit := s[start:i]
	if !isFloat {
		if intDigits > maxPyIntDigits {
			return false // ValueError: exceeds the limit for integer string conversion
		}
		if string(lit) == "-0" {
			lit = lit[1:]
		}
		p.out = append(p.out, lit...)
		return true
	}
	// The grammar above is a subset of what ParseFloat accepts, so the only
	// possible error is ErrRange, where ParseFloat returns ±Inf just as
	// Python's float() does.
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && !math.IsInf(f, 0) {
		return false
	}
	p.out = appendPyFloat(p.out, f)
	return true
}

// appendPyFloat appends repr(f) as CPython prints it (float_repr_style
// "short"): the shortest digits that round-trip, in fixed notation with at
// least one decimal when the decimal exponent is in [-4, 16), else in
// scientific notation with a signed, at least two-digit exponent.
func appendPyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	// 'e' with precision -1 gives the same shortest round-trip digits as
	// Python's repr; only the layout differs.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd[d]
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	ePos := bytes.IndexByte(e, 'e')
	mant, expPart := e[:ePos], e[ePos+1:]
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	exp, _ := strconv.Atoi(string(expPart)) // always well formed here
	d := digits[:nd]

	if exp < -4 || exp >= 16 {
		dst = append(dst, d[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, '0', '.')
		for k := 0; k < -exp-1; k++ {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	}
	// 0 <= exp < 16: exp+1 integer digits, padded with zeros if the
	// shortest form has fewer, then at least one decimal.
	intLen := exp + 1
	if nd <= intLen {
		dst = append(dst, d...)
		for k := nd; k < intLen; k++ {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	}
	dst = append(dst, d[:intLen]...)
	dst = append(dst, '.')
	return append(dst, d[intLen:]...)
}
