package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// amazonNoopBench runs drivers/amazon/bench's TestNoopRerunOfAmazonBuilds:
// n amazon_ebs builds against moto and the local sshd, run by bin twice.
func amazonNoopBench(bin string, n int) error {
	return benchTest(bin, "./drivers/amazon/bench", "TestNoopRerunOfAmazonBuilds",
		"IMGBUILD_BENCH_AMAZON_BUILDS="+strconv.Itoa(n), "AWS_EC2_METADATA_DISABLED=true")
}

// sshMemoryBench runs drivers/ssh/bench's TestMemoryPerConcurrentBuild for
// the counts of concurrent builds in counts ("30,100").
func sshMemoryBench(bin, counts string) error {
	return benchTest(bin, "./drivers/ssh/bench", "TestMemoryPerConcurrentBuild", "IMGBUILD_BENCH_MEMORY_N="+counts)
}

// benchTest runs one opt-in benchmark test of pkg with the go command
// ($GO, else go on the PATH), measuring bin, its output going to ours.
func benchTest(bin, pkg, test string, env ...string) error {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, "test", pkg, "-run", "^"+test+"$", "-v", "-count=1", "-timeout", "60m")
	cmd.Env = append(append(os.Environ(), "IMGBUILD_BENCH=1", "IMGBUILD_BENCH_BIN="+bin), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s test %s -run %s: %w", goCmd, pkg, test, err)
	}
	return nil
}
