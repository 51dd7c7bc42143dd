package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// getenv reads govc's environment variables; tests replace it.
var getenv = os.Getenv

// keepAliveInterval is how often an idle session is kept alive. vCenter
// drops sessions idle for 30 minutes by default; a build waits longer than
// that for an OS install. Tests shorten it.
var keepAliveInterval = 5 * time.Minute

// endpoint is a Connection with govc's environment applied: everything
// needed to log in.
type endpoint struct {
	URL        *url.URL // the SDK URL, without user information
	Username   string
	Password   string
	Insecure   bool
	Datacenter string
}

// String names the endpoint in messages: "https://vc.example.com/sdk".
func (e *endpoint) String() string { return e.URL.String() }

// resolveEndpoint applies govc's environment variables to the keywords left
// unset and checks that something to log in with remains.
func resolveEndpoint(c Connection) (*endpoint, error) {
	server, from := c.VCenterServer, "vcenter_server"
	if server == "" {
		server, from = getenv("GOVC_URL"), "GOVC_URL"
	}
	if server == "" {
		return nil, errors.New("no vCenter to build on: set vcenter_server, or GOVC_URL in the environment as for govc")
	}
	u, err := serverURL(server)
	if err != nil {
		return nil, fmt.Errorf("%s %v", from, err)
	}
	e := &endpoint{Username: c.Username, Password: c.Password, Datacenter: c.Datacenter}
	if e.Username == "" {
		e.Username = getenv("GOVC_USERNAME")
	}
	if e.Password == "" {
		e.Password = getenv("GOVC_PASSWORD")
	}
	if u.User != nil {
		if e.Username == "" {
			e.Username = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && e.Password == "" {
			e.Password = p
		}
		u.User = nil
	}
	e.URL = u
	if e.Username == "" {
		return nil, fmt.Errorf("no user to log in to %s as: set username, or GOVC_USERNAME in the environment", u)
	}
	if e.Password == "" {
		return nil, fmt.Errorf("no password to log in to %s as %s: set password (from a sensitive var), or GOVC_PASSWORD in the environment", u, e.Username)
	}
	switch {
	case c.InsecureConnection != nil:
		e.Insecure = *c.InsecureConnection
	case getenv("GOVC_INSECURE") != "":
		b, err := strconv.ParseBool(getenv("GOVC_INSECURE"))
		if err != nil {
			return nil, fmt.Errorf("GOVC_INSECURE=%q is not a boolean (1, true, 0, false)", getenv("GOVC_INSECURE"))
		}
		e.Insecure = b
	}
	if e.Datacenter == "" {
		e.Datacenter = getenv("GOVC_DATACENTER")
	}
	return e, nil
}

// vcSession is one logged-in session with vCenter, kept alive while the
// build runs.
type vcSession struct {
	ep     *endpoint
	client *govmomi.Client
	rest   *rest.Client // logged in on first use (content libraries)
}

// login connects to vCenter and logs in, keeping the session alive. Its
// errors say what went wrong in the user's terms: vCenter cannot be
// reached, its certificate is not trusted, the password is wrong.
func login(ctx context.Context, ep *endpoint) (*vcSession, error) {
	sc := soap.NewClient(ep.URL, ep.Insecure)
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, reachError(ep, err)
	}
	vc.RoundTripper = keepalive.NewHandlerSOAP(vc.RoundTripper, keepAliveInterval, nil)
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(ep.Username, ep.Password)); err != nil {
		if fault.Is(err, &types.InvalidLogin{}) {
			return nil, fmt.Errorf("vCenter at %s refused the login of %q: the user name or password is wrong (check username and password, or GOVC_USERNAME and GOVC_PASSWORD)", ep, ep.Username)
		}
		return nil, reachError(ep, err)
	}
	return &vcSession{ep: ep, client: c}, nil
}

// reachError explains a failure to talk to vCenter at all.
func reachError(ep *endpoint, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if soap.IsCertificateUntrusted(err) {
		return fmt.Errorf("vCenter at %s presented a TLS certificate this machine does not trust (%s): install its CA certificate in the system's trust store, or set insecure_connection = True (GOVC_INSECURE=1) to skip the check", ep, innermost(err))
	}
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("cannot reach vCenter at %s: the name %s does not resolve: check vcenter_server (or GOVC_URL)", ep, dns.Name)
	case errors.As(err, &op):
		return fmt.Errorf("cannot reach vCenter at %s: %s: check vcenter_server (or GOVC_URL) and that vCenter is up and reachable from here", ep, innermost(err))
	}
	return fmt.Errorf("talking to vCenter at %s: %s", ep, explain(err))
}

// innermost returns the message of the innermost wrapped error: "connection
// refused" rather than the whole Post "https://..." chain.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// restClient returns the session's REST client for the vAPI (content
// libraries), logging it in on first use.
func (s *vcSession) restClient(ctx context.Context) (*rest.Client, error) {
	if s.rest != nil {
		return s.rest, nil
	}
	rc := rest.NewClient(s.client.Client)
	rc.Transport = keepalive.NewHandlerREST(rc, keepAliveInterval, nil)
	if err := rc.Login(ctx, url.UserPassword(s.ep.Username, s.ep.Password)); err != nil {
		return nil, fmt.Errorf("logging in to vCenter's REST API at %s: %s", s.ep, explain(err))
	}
	s.rest = rc
	return rc, nil
}

// logout ends the sessions, stopping their keepalives.
func (s *vcSession) logout(ctx context.Context) error {
	var errs []error
	if s.rest != nil {
		if err := s.rest.Logout(ctx); err != nil {
			errs = append(errs, fmt.Errorf("logging out of the REST API: %s", explain(err)))
		}
		s.rest = nil
	}
	if err := s.client.Logout(ctx); err != nil {
		errs = append(errs, fmt.Errorf("logging out of %s: %s", s.ep, explain(err)))
	}
	return errors.Join(errs...)
}

// asMethodFault returns a SOAP fault's detail as a BaseMethodFault: decoded
// faults are values, whose methods are the pointer's.
func asMethodFault(v any) types.BaseMethodFault {
	if f, ok := v.(types.BaseMethodFault); ok {
		return f
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return nil
	}
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	f, _ := p.Interface().(types.BaseMethodFault)
	return f
}

// explain renders a vSphere error without the SOAP plumbing: the fault's
// message and type ("The name 'web' already exists. (DuplicateName)").
func explain(err error) string {
	if err == nil {
		return ""
	}
	var f types.BaseMethodFault
	msg := ""
	switch {
	case soap.IsSoapFault(err):
		sf := soap.ToSoapFault(err)
		msg = sf.String
		f = asMethodFault(sf.VimFault())
	case soap.IsVimFault(err):
		f = soap.ToVimFault(err)
	default:
		var te interface {
			Fault() types.BaseMethodFault
		}
		if errors.As(err, &te) {
			msg, f = err.Error(), te.Fault()
		}
	}
	if f == nil {
		return err.Error()
	}
	name := strings.TrimPrefix(fmt.Sprintf("%T", f), "*types.")
	if msg == "" {
		if lf := f.GetMethodFault(); lf != nil && lf.FaultMessage != nil && len(lf.FaultMessage) > 0 {
			msg = lf.FaultMessage[0].Message
		}
	}
	if msg == "" {
		return name
	}
	return msg + " (" + name + ")"
}
