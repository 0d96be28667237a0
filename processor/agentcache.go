package processor

// agentCache is a direct-mapped cache in front of the engine's agents map,
// keyed by an id's length and its first and last eight bytes, which
// identify an id of up to 16 bytes without reading the agent's own copy
// of it. With many agents that matters: the map compares the event's id
// with the key it holds, which is cold memory, and the two are seldom the
// same string (the decoder's string cache keeps the ids of a few thousand
// agents at most). The map stays the one record of the agents; the cache
// holds at most one agent per slot and is refilled from the map on a miss.
type agentCache struct {
	slots []agentSlot // len is 0 or a power of two
}

type agentSlot struct {
	w0, w1 uint64 // the id's first and last eight bytes (zero-filled when shorter)
	a      *agent // nil: empty
	n      int    // the id's length
}

// agentCacheMin is the least number of slots the cache has once used.
const agentCacheMin = 1024

// idWords returns the first and last eight bytes of id as little-endian
// words, zero-filled when id is shorter than eight bytes.
func idWords(id string) (w0, w1 uint64) {
	if len(id) >= 8 {
		return load64(id), load64(id[len(id)-8:])
	}
	for i := 0; i < len(id); i++ {
		w0 |= uint64(id[i]) << (8 * i)
	}
	return w0, 0
}

func (c *agentCache) slot(n int, w0, w1 uint64) *agentSlot {
	// The high and low halves of a 128-bit product: every input bit
	// reaches the low bits (a plain product only carries bits upward, and
	// ids differ in their last bytes, the top of w1).
	h := mix(w0^uint64(n)*hashP1, w1^hashP2)
	return &c.slots[h&uint64(len(c.slots)-1)]
}

// get returns the cached agent of id, or nil.
func (c *agentCache) get(id string) *agent {
	if len(c.slots) == 0 {
		return nil
	}
	w0, w1 := idWords(id)
	s := c.slot(len(id), w0, w1)
	if s.a != nil && s.n == len(id) && s.w0 == w0 && s.w1 == w1 && (len(id) <= 16 || s.a.id == id) {
		return s.a
	}
	return nil
}

// put caches a, one of population agents. The cache keeps two slots or
// more per agent: when the population outgrows that, it is made anew,
// empty, at twice the size.
func (c *agentCache) put(a *agent, population int) {
	if len(c.slots) < 2*population {
		c.resize(2 * population)
	}
	w0, w1 := idWords(a.id)
	*c.slot(len(a.id), w0, w1) = agentSlot{w0: w0, w1: w1, a: a, n: len(a.id)}
}

// resize empties the cache and gives it room for population agents.
func (c *agentCache) resize(population int) {
	n := agentCacheMin
	for n < population {
		n *= 2
	}
	c.slots = make([]agentSlot, n)
}

// drop removes the agent of id from the cache, if it is there.
func (c *agentCache) drop(id string) {
	if len(c.slots) == 0 {
		return
	}
	w0, w1 := idWords(id)
	if s := c.slot(len(id), w0, w1); s.a != nil && s.a.id == id {
		*s = agentSlot{}
	}
}
