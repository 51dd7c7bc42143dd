package amazon

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// APIError is an AWS API call that failed, told so that a user can act on
// it: which call, in which region, what AWS said, and for a refusal which
// IAM permission is missing.
type APIError struct {
	Service   string // "EC2", "STS"
	Operation string // "RunInstances"
	Region    string
	Code      string // AWS's error code: "InvalidAMIID.NotFound"
	Message   string
	RequestID string
	Err       error
}

// Unwrap returns the SDK's error.
func (e *APIError) Unwrap() error { return e.Err }

// Permission is the IAM action the call needs: "ec2:RunInstances".
func (e *APIError) Permission() string {
	if m := deniedAction.FindStringSubmatch(e.Message); m != nil {
		return m[1]
	}
	return strings.ToLower(e.Service) + ":" + e.Operation
}

// Principal is who was refused, when AWS said ("arn:aws:iam::...:user/ci").
func (e *APIError) Principal() string {
	if m := deniedPrincipal.FindStringSubmatch(e.Message); m != nil {
		return m[1]
	}
	return ""
}

// Denied reports whether AWS refused the call for lack of permission.
func (e *APIError) Denied() bool {
	switch e.Code {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Client.UnauthorizedOperation":
		return true
	}
	return false
}

// badCredentials reports whether AWS did not accept the credentials.
func (e *APIError) badCredentials() bool {
	switch e.Code {
	case "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
		"RequestExpired", "UnrecognizedClientException", "InvalidAccessKeyId", "InvalidToken":
		return true
	}
	return false
}

var (
	deniedAction    = regexp.MustCompile(`not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9]+)`)
	deniedPrincipal = regexp.MustCompile(`User:? (arn:[^ ]+) is not authorized`)
)

// Error says what failed and what to do.
func (e *APIError) Error() string {
	where := e.Operation
	if e.Region != "" {
		where += " in " + e.Region
	}
	said := e.Code
	if e.Message != "" {
		said += ": " + firstSentences(e.Message)
	}
	switch {
	case e.Denied():
		if p := e.Principal(); p != "" {
			return fmt.Sprintf("%s was denied (%s): %s lacks the IAM permission %s; allow %q in a policy of %s (with the resources and conditions it needs), or use credentials that have it",
				where, e.Code, p, e.Permission(), e.Permission(), p)
		}
		return fmt.Sprintf("%s was denied (%s): the credentials in use lack the IAM permission %s; allow %q in a policy attached to them (with the resources and conditions it needs), or use credentials that have it",
			where, e.Code, e.Permission(), e.Permission())
	case e.badCredentials():
		return fmt.Sprintf("%s: AWS did not accept the credentials (%s); check that they are current (aws sso login, a fresh session token) and that this machine's clock is right", where, said)
	case e.Code == "OptInRequired":
		return fmt.Sprintf("%s: %s; enable the region (or subscribe to the product) in the account first", where, said)
	case e.Code == "RequestLimitExceeded" || e.Code == "Throttling" || e.Code == "ThrottlingException":
		return fmt.Sprintf("%s: still throttled after every retry (%s); run fewer builds at once (--parallel) or ask AWS to raise the account's API limits", where, said)
	}
	if said == "" {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	return fmt.Sprintf("%s: %s", where, said)
}

// firstSentences keeps AWS's message short: the encoded authorization
// failure blob some refusals carry says nothing to a reader.
func firstSentences(msg string) string {
	if i := strings.Index(msg, " Encoded authorization failure message:"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// newAPIError wraps an error of a call (inside the middleware stack, where
// ctx knows the service, operation and region) as *APIError when it came
// from the API; other errors (cancellation, the network) are returned as
// they are.
func newAPIError(ctx context.Context, err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return err
	}
	e := &APIError{
		Service:   awsmiddleware.GetServiceID(ctx),
		Operation: awsmiddleware.GetOperationName(ctx),
		Region:    awsmiddleware.GetRegion(ctx),
		Code:      api.ErrorCode(),
		Message:   api.ErrorMessage(),
		Err:       err,
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.RequestID = re.ServiceRequestID()
	}
	return e
}

// explain returns the most telling form of a call's error: the *APIError
// inside the SDK's wrapping, if there is one.
func explain(err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return err
}

// errorCode is the API's error code of err, or "".
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// notFound reports whether err says the resource does not exist (any
// more): "InvalidInstanceID.NotFound", "InvalidGroup.NotFound", ...
func notFound(err error) bool {
	c := errorCode(err)
	return strings.HasSuffix(c, ".NotFound") || strings.HasSuffix(c, "NotFoundException") || c == "InvalidAMIID.Unavailable"
}
