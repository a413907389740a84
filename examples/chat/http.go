package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// healthMux holds the consumer's health handler once the consumer exists.
var healthMux atomic.Value // http.Handler

// serveHTTP serves Prometheus metrics on /metrics and the consumer's health
// report on /readyz, /livez and /healthz at addr, and returns a function that
// shuts the server down.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, log *zap.Logger) func() {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := healthMux.Load().(http.Handler)
		if !ok {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	mux.Handle("/readyz", health)
	mux.Handle("/livez", health)
	mux.Handle("/healthz", health)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("cannot serve metrics and health", zap.String("addr", addr), zap.Error(err))
		return func() {}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving metrics and health", zap.String("url", "http://"+ln.Addr().String()+"/metrics"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		<-done
	}
}
