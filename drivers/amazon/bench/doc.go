// Package bench holds the amazon driver's performance figures: the API
// calls of one simple build (counted and listed) and the wall time of 20
// builds at once, against the moto server of the driver's tests. It holds
// no code of its own; run.sh runs the benchmarks in drivers/amazon and
// prints the figures.
package bench
