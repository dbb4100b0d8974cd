// A long-running Go HTTPS client for tests/runtime_matrix.rs.
//
// Usage: tlsclient PORT, then one mode per line on stdin; one line back:
// "ok", "fail <reason>", or a number for "reloads".
//
//	system    http.Client with the default roots: crypto/x509 loads
//	          SSL_CERT_FILE / SSL_CERT_DIR once per process, at first use
//	reloaded  a pool read from SSL_CERT_FILE at start and again on every
//	          SIGHUP: what an application must do to follow a rotation
//	reloads   how many SIGHUPs were handled
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	mu      sync.Mutex
	pool    *x509.CertPool
	reloads int
)

func load() error {
	pem, err := os.ReadFile(os.Getenv("SSL_CERT_FILE"))
	if err != nil {
		return err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in SSL_CERT_FILE")
	}
	mu.Lock()
	pool = p
	mu.Unlock()
	return nil
}

func get(url string, roots *x509.CertPool) string {
	client := &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			// nil RootCAs: the system roots, loaded once per process.
			TLSClientConfig: &tls.Config{RootCAs: roots},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return "fail " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Sprintf("fail HTTP %d", resp.StatusCode)
	}
	return "ok"
}

func main() {
	url := "https://127.0.0.1:" + os.Args[1] + "/"
	if err := load(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := load(); err != nil {
				fmt.Fprintln(os.Stderr, "reload:", err)
				continue
			}
			mu.Lock()
			reloads++
			mu.Unlock()
		}
	}()
	// Load the system roots now, before any rotation, as a long-running
	// program would have done with its first request.
	if _, err := x509.SystemCertPool(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "system":
			fmt.Println(get(url, nil))
		case "reloaded":
			mu.Lock()
			p := pool
			mu.Unlock()
			fmt.Println(get(url, p))
		case "reloads":
			mu.Lock()
			fmt.Println(reloads)
			mu.Unlock()
		default:
			fmt.Println("fail unknown mode " + in.Text())
		}
	}
}
