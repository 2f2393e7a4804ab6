package pop3

import "math/bits"

// marks are a session's marks for deletion (RFC 1939 §5), a bit per
// message, made at the first DELE: a login costs nothing per message, and
// STAT after DELE is a subtraction, not a scan.
type marks struct {
	bits  []uint64
	n     int   // messages marked
	octet int64 // their size
}

func (m *marks) has(i int) bool {
	return i/64 < len(m.bits) && m.bits[i/64]&(1<<(i%64)) != 0
}

// set marks message i of a maildrop of count messages, size octets long.
func (m *marks) set(i, count int, size int64) {
	if m.bits == nil {
		m.bits = make([]uint64, (count+63)/64)
	}
	if !m.has(i) {
		m.bits[i/64] |= 1 << (i % 64)
		m.n++
		m.octet += size
	}
}

// each calls f with every marked index, in order.
func (m *marks) each(f func(i int)) {
	for w, word := range m.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			f(w*64 + b)
			word &^= 1 << b
		}
	}
}

// list returns the marked indexes, in order.
func (m *marks) list() []int {
	out := make([]int, 0, m.n)
	m.each(func(i int) { out = append(out, i) })
	return out
}

func (m *marks) clear() { clear(m.bits); m.n, m.octet = 0, 0 }
