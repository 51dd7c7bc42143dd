package awstest

import (
	"encoding/xml"

	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// IAMUser makes an IAM user in s with an inline policy and returns its
// access key. Call it before EnforceIAM: until then moto lets every
// request in.
func (s *Server) IAMUser(t testing.TB, name, policy string) (keyID, secret string) {
	t.Helper()
	s.iam(t, url.Values{"Action": {"CreateUser"}, "UserName": {name}})
	s.iam(t, url.Values{"Action": {"PutUserPolicy"}, "UserName": {name}, "PolicyName": {name + "-policy"}, "PolicyDocument": {policy}})
	body := s.iam(t, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}})
	var out struct {
		Key struct {
			ID     string `xml:"AccessKeyId"`
			Secret string `xml:"SecretAccessKey"`
		} `xml:"CreateAccessKeyResult>AccessKey"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.Key.ID == "" {
		t.Fatalf("awstest: CreateAccessKey answered %q: %v", body, err)
	}
	return out.Key.ID, out.Key.Secret
}

// EnforceIAM makes s authenticate and authorize every request from now on,
// as AWS does: unknown keys are refused (AuthFailure) and calls no policy
// allows are denied (AccessDenied).
func (s *Server) EnforceIAM(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset-auth", "application/octet-stream", strings.NewReader("0"))
	if err != nil {
		t.Fatalf("awstest: enabling IAM enforcement: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("awstest: enabling IAM enforcement: %s: %s", resp.Status, b)
	}
}

// DisableIAM lets every request in again, as before EnforceIAM.
func (s *Server) DisableIAM(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset-auth", "application/octet-stream", strings.NewReader("inf"))
	if err != nil {
		t.Fatalf("awstest: disabling IAM enforcement: %v", err)
	}
	resp.Body.Close()
}

// iam calls moto's IAM query API (unsigned: moto checks nothing until
// EnforceIAM).
func (s *Server) iam(t testing.TB, form url.Values) []byte {
	t.Helper()
	form.Set("Version", "2010-05-08")
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// The credential scope tells moto which service the call is for.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("awstest: IAM %s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("awstest: IAM %s: %s: %s", form.Get("Action"), resp.Status, body)
	}
	return body
}
