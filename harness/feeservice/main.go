// Command feeservice serves the JSON that LND's --fee.url reads
// (chainfee.WebAPIResponse: fee_by_block_target in sat/kvB and
// min_relay_feerate) from a file the lab rewrites to change fees.
//
// It is a static binary so the same program runs as a local process and
// inside a FROM-scratch container on a lab's Docker network, where LND
// containers cannot reach a server on the host's loopback.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	file := flag.String("file", "fees.json", "JSON file served at /fee-estimates.json")
	flag.Parse()

	if _, err := os.Stat(*file); err != nil {
		log.Fatalf("fee file: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/fee-estimates.json", func(w http.ResponseWriter, _ *http.Request) {
		// Read on every request: the lab changes fees by rewriting the file.
		data, err := os.ReadFile(*file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("serving %s on %s", *file, *listen)
	log.Fatal(srv.ListenAndServe())
}
