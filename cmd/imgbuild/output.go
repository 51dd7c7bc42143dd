package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// outputErrors is a writer that never fails: the first error writing to
// the one it wraps (a closed pipe: imgbuild run x.star | head -1) is kept,
// for a warning at the end, and what is written after it is dropped. A run
// whose output goes nowhere still cleans up and exits with its usual code;
// its log files have everything.
type outputErrors struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// Write implements io.Writer; it always reports success.
func (o *outputErrors) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		if _, err := o.w.Write(p); err != nil {
			o.err = err
		}
	}
	return len(p), nil
}

// Err is the first error writing, if any.
func (o *outputErrors) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// outputFile is outputErrors on a file, keeping its descriptor visible so
// that the renderers can tell a terminal.
type outputFile struct {
	*outputErrors
	fd uintptr
}

// Fd returns the file's descriptor.
func (o outputFile) Fd() uintptr { return o.fd }

// keepWriting wraps w so that writing to it never fails (see outputErrors)
// and returns the function giving the first error.
func keepWriting(w io.Writer) (io.Writer, func() error) {
	o := &outputErrors{w: w}
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		return outputFile{o, f.Fd()}, o.Err
	}
	return o, o.Err
}

// ignoreSIGPIPE makes a write to a closed pipe fail with EPIPE instead of
// killing the process with SIGPIPE, as Go does for standard output and
// error by default: imgbuild must outlive its reader to clean up. (Notify,
// not Ignore: the programs imgbuild starts get SIGPIPE's default back.)
func ignoreSIGPIPE() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// warnOutput says, where it still can, that an output stopped.
func warnOutput(stderr io.Writer, name string, err error) {
	if err != nil {
		fmt.Fprintf(stderr, "warning: could not write to %s (%v): what followed was dropped; the run's log files have it all\n", name, err)
	}
}
