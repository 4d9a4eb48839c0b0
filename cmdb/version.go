package cmdb

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// computeVersion hashes the content independently of order: the sum of a
// hash per CI and the sum of a hash per relation (a multiset hash), mixed
// with the counts. Attributes are hashed in key order, aliases in theirs
// (alias order decides nothing, but a reordered list is a changed CI).
func (t *Topology) computeVersion() string {
	var ciSum, relSum uint64
	var keys []string
	var buf []byte
	idHash := make([]uint64, len(t.cis))
	for i := range t.cis {
		ci := &t.cis[i]
		idHash[i] = xxhash.Sum64String(ci.ID)
		buf = buf[:0]
		for _, s := range [...]string{ci.ID, ci.Type, ci.Name, ci.SupportGroup} {
			buf = append(buf, s...)
			buf = append(buf, 0xff)
		}
		buf = strconv.AppendInt(buf, int64(ci.Criticality), 10)
		buf = append(buf, 0xff)
		for _, a := range ci.Aliases {
			buf = append(buf, a...)
			buf = append(buf, 0xfe)
		}
		buf = append(buf, 0xff)
		keys = keys[:0]
		for k := range ci.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			buf = append(buf, k...)
			buf = append(buf, 0xfe)
			buf = append(buf, ci.Attributes[k]...)
			buf = append(buf, 0xfe)
		}
		ciSum += xxhash.Sum64(buf)
	}
	// Relations hash by the hashes of their ends' ids: no string is read
	// again.
	typeHash := make([]uint64, len(t.relTypes))
	for i, typ := range t.relTypes {
		typeHash[i] = xxhash.Sum64String(typ)
	}
	for k := range t.relSrc {
		h := idHash[t.relSrc[k]]*hashMul ^ bits.RotateLeft64(idHash[t.relDst[k]], 21) ^ typeHash[t.relType[k]]
		h ^= h >> 29
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 32
		relSum += h
	}
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:], ciSum)
	binary.LittleEndian.PutUint64(b[8:], relSum)
	binary.LittleEndian.PutUint64(b[16:], uint64(len(t.cis)))
	binary.LittleEndian.PutUint64(b[24:], uint64(len(t.relSrc)))
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], xxhash.Sum64(b[:]))
	return hex.EncodeToString(sum[:])
}
