// Package bench measures the SSH communicator side by side with OpenSSH's
// own clients (ssh, sftp, scp) against one private sshd, in one run, and
// prints the ratios. It holds no code of its own beyond its tests: run
// the transfer figures with run.sh (or IMGBUILD_BENCH=1 go test -run
// CompareWithOpenSSH -v), and the memory per concurrent build beside
// OpenSSH's clients with imgbench -ssh-memory (TestMemoryPerConcurrentBuild).
package bench
