//go:build race

package account

// raceEnabled reports whether the race detector is on: it makes argon2id
// about three times slower, so the timing tests take fewer samples.
const raceEnabled = true
