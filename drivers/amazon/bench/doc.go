// Package bench holds the amazon driver's performance figures, against a
// moto server on 127.0.0.1: the API calls of one simple build (counted and
// listed) and the wall time of 20 builds at once, which run.sh runs from
// the benchmarks in drivers/amazon; and the no-op re-run of 100 unchanged
// amazon_ebs builds beside their full build, as real imgbuild processes
// (TestNoopRerunOfAmazonBuilds, which imgbench -amazon runs). It holds no
// code but its test.
package bench
