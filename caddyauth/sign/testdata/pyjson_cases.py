#!/usr/bin/env python3
# Regenerates the pyCompactCases table in pyjson_test.go from CPython itself:
#   python3 testdata/pyjson_cases.py > /tmp/table.txt   (then paste between the braces)
# The Go tests never run this; it only records how the expected values were made.
import json, sys
def goq(b):
    s='"'
    for c in b:
        if c==0x22: s+='\\"'
        elif c==0x5c: s+='\\\\'
        elif 0x20<=c<0x7f: s+=chr(c)
        elif c in (9,10,13): s+={9:'\\t',10:'\\n',13:'\\r'}[c]
        else: s+='\\x%02x'%c
    return s+'"'
def py(b):
    try:
        return json.dumps(json.loads(b), separators=(',',':')).encode()
    except (ValueError, RecursionError):
        return None
cases = [
 ("wire vector legacy body", b'[{"name": "Acme", "description": null}]'),
 ("key order as sent", b'{"b": 1, "a": 2, "c": 3}'),
 ("whitespace outside strings removed", b' \t\r\n{ "a" : [ 1 , 2 ] ,\n "b" : { } , "c" : [ ] }\r\n '),
 ("whitespace inside strings kept", b'{"a b": " x  y "}'),
 ("duplicate key keeps first position last value", b'{"a": 1, "b": 2, "a": 3}'),
 ("duplicate key via escape equals raw", b'{"\\u00e9": 1, "\xc3\xa9": 2}'),
 ("duplicate key escaped pair equals raw astral", b'{"\\ud83d\\ude00": 1, "\xf0\x9f\x98\x80": 2}'),
 ("raw CESU surrogates are not the astral key", b'{"\xed\xa0\xbd\xed\xb8\x80": 1, "\xf0\x9f\x98\x80": 2}'),
 ("duplicate keys nested and outer", b'{"a": {"x": 1, "x": 2}, "b": 0, "a": {"y": 3}}'),
 ("duplicate keys beyond map threshold", b'{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":33,"k10":10,"k0":"z"}'),
 ("triple duplicate", b'{"a":1,"a":2,"a":3}'),
 ("int digits kept beyond int64", b'[123456789012345678901234567890, -98765432109876543210]'),
 ("minus zero int", b'-0'),
 ("zero and negative ints", b'[0, -1, 42]'),
 ("float one", b'1.0'),
 ("float exponent fixed", b'1E5'),
 ("float exponent plus sign", b'1.5E+3'),
 ("float 1e16 scientific", b'1e16'),
 ("float 1e15 fixed", b'1e15'),
 ("float 0.0001 fixed", b'0.0001'),
 ("float 0.00001 scientific", b'0.00001'),
 ("float 1.5e-5", b'1.5e-5'),
 ("float 1e-7", b'1e-7'),
 ("float overflow Infinity", b'1e400'),
 ("float negative overflow", b'-1e400'),
 ("float underflow zero", b'1e-400'),
 ("float negative zero", b'-0.0'),
 ("float shortest repr 0.1", b'0.1'),
 ("float sum repr", b'0.30000000000000004'),
 ("float max", b'1.7976931348623157e308'),
 ("float min subnormal", b'5e-324'),
 ("float rounding of long mantissa", b'123456789.123456789123456789'),
 ("float 2^53+1 rounds", b'9007199254740993.0'),
 ("float 1e22", b'1e22'),
 ("float 1.23e+22 trailing zeros", b'12300000000000000000000.0'),
 ("float large fixed", b'1234567890123456.7'),
 ("float zero with exponent", b'0e999999999999999999'),
 ("float huge exponent", b'1e999999999999999999'),
 ("literals", b'[true, false, null]'),
 ("NaN and infinities", b'[NaN, Infinity, -Infinity]'),
 ("short escapes", b'"\\"\\\\\\/\\b\\f\\n\\r\\t"'),
 ("control escapes lower-case", b'"\\u0001\\u001F\\u000b"'),
 ("DEL raw is escaped", b'"a\x7fb"'),
 ("slash not escaped", b'"/a/b"'),
 ("non-ASCII raw", b'"\xc3\xa9\xe2\x82\xac\xe4\xb8\xad"'),
 ("astral raw as surrogate pair", b'"\xf0\x9f\x98\x80"'),
 ("escaped pair upper-case hex", b'"\\uD83D\\uDE00"'),
 ("lone high surrogate escape", b'"\\ud800"'),
 ("lone low surrogate escape", b'"\\udc00"'),
 ("reversed surrogate escapes", b'"\\udc00\\ud800"'),
 ("high surrogate then plain escape", b'"\\ud800\\u0041"'),
 ("raw CESU surrogate passes", b'"\xed\xa0\x80"'),
 ("U+FFFF and U+FFFD", b'"\xef\xbf\xbf\xef\xbf\xbd"'),
 ("top-level string", b'"abc"'),
 ("top-level number with spaces", b'  12  '),
 ("UTF-8 BOM accepted for bytes", b'\xef\xbb\xbf{"a":1}'),
 ("UTF-16-LE with BOM", '{"\u00e9":[1]}'.encode('utf-16')),
 ("UTF-16-BE with BOM", b'\xfe\xff' + '{"\u00e9":[1]}'.encode('utf-16-be')),
 ("UTF-16-LE detected without BOM", '[1, "\U0001F600"]'.encode('utf-16-le')),
 ("UTF-16-BE detected two bytes", b'\x001'),
 ("UTF-16-LE detected two bytes", b'1\x00'),
 ("UTF-16 lone surrogate passes", b'\xff\xfe"\x00\x00\xd8"\x00'),
 ("UTF-32-LE with BOM", '["x"]'.encode('utf-32')),
 ("UTF-32-BE detected", '["x"]'.encode('utf-32-be')),
 ("UTF-32 lone surrogate passes", b'\xff\xfe\x00\x00"\x00\x00\x00\x00\xd8\x00\x00"\x00\x00\x00'),
 # refusals
 ("empty", b''),
 ("whitespace only", b' \n'),
 ("trailing comma array", b'[1,]'),
 ("trailing comma object", b'{"a":1,}'),
 ("double comma", b'[1,,2]'),
 ("single quotes", b"{'a':1}"),
 ("non-string key", b'{1:2}'),
 ("missing colon", b'{"a" 1}'),
 ("leading zero", b'01'),
 ("bare dot after int", b'1.'),
 ("leading dot", b'.5'),
 ("plus sign", b'+1'),
 ("lone minus", b'-'),
 ("exponent without digits", b'1e'),
 ("hex number", b'0x1'),
 ("lower-case nan", b'nan'),
 ("minus NaN", b'-NaN'),
 ("capital True", b'True'),
 ("truncated literal", b'tru'),
 ("literal with extra data", b'nullx'),
 ("extra data", b'[1] [2]'),
 ("raw tab in string", b'"a\tb"'),
 ("raw newline in string", b'"a\nb"'),
 ("invalid escape x", b'"\\x41"'),
 ("invalid escape upper U", b'"\\U0041"'),
 ("short unicode escape", b'"\\u12"'),
 ("bad hex after high surrogate", b'"\\ud800\\u12G4"'),
 ("unterminated string", b'"abc'),
 ("invalid UTF-8 byte", b'"\xff"'),
 ("overlong UTF-8", b'"\xc0\x80"'),
 ("truncated surrogate encoding", b'"\xed\xa0"'),
 ("above U+10FFFF", b'"\xf4\x90\x80\x80"'),
 ("NUL after value", b'[1,2]\x00'),
 ("double UTF-8 BOM", b'\xef\xbb\xbf\xef\xbb\xbf[1]'),
 ("form feed is not whitespace", b'\x0c1'),
 ("non-ASCII outside string", b'[1,\xc3\xa9]'),
 ("UTF-16 odd length", b'\xff\xfe"\x00\x00'),
 ("UTF-32 out of range", b'\xff\xfe\x00\x00"\x00\x00\x00\x00\x00\x11\x00"\x00\x00\x00'),
 ("UTF-32 truncated", b'\xff\xfe\x00\x00"\x00\x00\x00"\x00\x00'),
 ("comment", b'[1 /* c */]'),
]
print("\t// Generated by CPython %s: for each input, json.dumps(json.loads(in), separators=(\",\", \":\"))," % sys.version.split()[0])
print("\t// ok=false where json.loads raised. Do not edit by hand; regenerate with testdata/pyjson_cases.py.")
for name, b in cases:
    r = py(b)
    if r is None:
        print('\t{%s, %s, "", false},' % (goq(name.encode()), goq(b)))
    else:
        print('\t{%s, %s, %s, true},' % (goq(name.encode()), goq(b), goq(r)))
# limits
for label, s in [("4300 digits", '1'*4300), ("4301 digits", '1'*4301), ("-4300", '-'+'1'*4300), ("-4301", '-'+'1'*4301), ("d512", '['*512+']'*512), ("d512obj", '{"a":'*512+'1'+'}'*512)]:
    print('//', label, 'ok' if py(s.encode()) is not None else 'refused', file=sys.stderr)
