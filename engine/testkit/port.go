package testkit

import "net"

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a counterpart (sshd, moto) that takes its port on the command line. Another
// process may take it first: callers retry on "Address already in use".
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
