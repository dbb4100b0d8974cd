// certdirscan: reads an SSL_CERT_DIR over and over while trust-injector
// rotates it, the way programs that list the directory and then read each
// file do, and counts the scans that trusted neither the old nor the new CA.
//
//	certdirscan CERTS_DIR STOP_FILE LEAF.pem...
//
// Each round scans twice:
//   - "path": what Go's crypto/x509 does for SSL_CERT_DIR (loadSystemRoots):
//     os.ReadDir(dir), then os.ReadFile(dir + "/" + name) for each entry,
//     ignoring read errors, every name resolved through the `certs` symlink;
//   - "resolved": the symlink resolved once, then the same listing and reads
//     inside the generation it named, where any read error is a failure:
//     a scan that started on a generation must complete on it.
//
// A scan is good when its pool verifies at least one LEAF (one signed by the
// old CA, one by the new). Ends when STOP_FILE exists (or after a bound),
// printing "scans=N failed_path=N failed_resolved=N" and the first failures.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const maxRounds = 200000
const maxDuration = 120 * time.Second

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: certdirscan CERTS_DIR STOP_FILE LEAF.pem...")
		os.Exit(2)
	}
	dir, stop := os.Args[1], os.Args[2]
	leaves := make([]*x509.Certificate, 0, len(os.Args)-3)
	for _, f := range os.Args[3:] {
		leaves = append(leaves, readLeaf(f))
	}
	var rounds, failedPath, failedResolved int
	var failures []string
	deadline := time.Now().Add(maxDuration)
	for rounds < maxRounds && time.Now().Before(deadline) {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		rounds++
		if why := judge(scanThroughPath(dir), leaves); why != "" {
			failedPath++
			failures = append(failures, "path: "+why)
		}
		if why := judge(scanResolved(dir), leaves); why != "" {
			failedResolved++
			failures = append(failures, "resolved: "+why)
		}
	}
	fmt.Printf("scans=%d failed_path=%d failed_resolved=%d\n", rounds, failedPath, failedResolved)
	for i, f := range failures {
		if i == 10 {
			break
		}
		fmt.Println(f)
	}
}

func readLeaf(path string) *x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		panic("no PEM in " + path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(err)
	}
	return cert
}

// scan is a pool with what was read, and the first error a careful reader
// would report.
type scan struct {
	pool    *x509.CertPool
	entries int
	err     error
}

// scanThroughPath is crypto/x509's loadSystemRoots for one directory.
func scanThroughPath(dir string) scan {
	s := scan{pool: x509.NewCertPool()}
	fis, err := os.ReadDir(dir)
	if err != nil {
		s.err = err
		return s
	}
	for _, fi := range fis {
		s.entries++
		data, err := os.ReadFile(dir + "/" + fi.Name())
		if err == nil {
			s.pool.AppendCertsFromPEM(data)
		}
	}
	return s
}

// scanResolved reads the one generation `certs` named when the scan began.
func scanResolved(dir string) scan {
	s := scan{pool: x509.NewCertPool()}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		s.err = err
		return s
	}
	fis, err := os.ReadDir(real)
	if err != nil {
		s.err = err
		return s
	}
	for _, fi := range fis {
		s.entries++
		data, err := os.ReadFile(filepath.Join(real, fi.Name()))
		if err != nil {
			s.err = err
			return s
		}
		s.pool.AppendCertsFromPEM(data)
	}
	return s
}

// judge says why a scan failed, or "" when it trusts one of the leaves.
func judge(s scan, leaves []*x509.Certificate) string {
	if s.err != nil {
		return s.err.Error()
	}
	opts := x509.VerifyOptions{Roots: s.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	var errs []string
	for _, leaf := range leaves {
		if _, err := leaf.Verify(opts); err == nil {
			return ""
		} else {
			errs = append(errs, err.Error())
		}
	}
	return fmt.Sprintf("%d entries, no leaf verifies: %s", s.entries, strings.Join(errs, "; "))
}
