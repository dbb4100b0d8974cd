// The .NET client of tests/dotnet.rs: HttpClient with the default certificate
// validation, which is what the Azure API Management self-hosted gateway (a
// .NET 8 program) uses for its calls to backends. Compiled by Mono's mcs
// against the .NET Framework 4.x reference assemblies and run by the .NET 8
// host (see tests/dotnet.rs); so C# 7 at most, and no async Main.
//
// Line protocol, like the other clients in tests/runtimes/: prints "ready",
// then answers one line per mode read from stdin: "ok", "ok <body>" when the
// server's body is not just "ok" (the keep-alive server names the connection),
// or "fail <exception chain>".
//   new           a new HttpClientHandler + HttpClient for this request only
//   pooled        one HttpClient for the whole process (its pool keeps the
//                 connection open between requests, as a gateway's does)
//   pooled-close  the same client, asking the server to close the connection
//   runtime       the runtime's description, e.g. ".NET 8.0.4"
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Runtime.InteropServices;

class TlsClient
{
    static string baseUrl;
    static HttpClient pooled;

    static string Get(HttpClient client, string path)
    {
        try
        {
            using (var resp = client.GetAsync(baseUrl + path).GetAwaiter().GetResult())
            {
                string body = resp.Content.ReadAsStringAsync().GetAwaiter().GetResult().Trim();
                if ((int)resp.StatusCode != 200)
                    return "fail HTTP status " + (int)resp.StatusCode;
                return body == "ok" ? "ok" : "ok " + body;
            }
        }
        catch (Exception e)
        {
            return "fail " + Reason(e);
        }
    }

    // Every exception of the chain, outermost first: the certificate chain
    // status (PartialChain, UntrustedRoot...) is in the innermost message.
    static string Reason(Exception e)
    {
        var parts = new List<string>();
        for (Exception x = e; x != null; x = x.InnerException)
            parts.Add(x.GetType().Name + ": " + x.Message);
        return string.Join(" <- ", parts).Replace("\r", " ").Replace("\n", " ");
    }

    static HttpClient Pooled()
    {
        if (pooled == null)
            pooled = new HttpClient(new HttpClientHandler());
        return pooled;
    }

    static int Main(string[] args)
    {
        baseUrl = "https://localhost:" + args[0];
        Console.WriteLine("ready");
        string line;
        while ((line = Console.ReadLine()) != null)
        {
            string mode = line.Trim();
            string answer;
            if (mode == "new")
            {
                using (var client = new HttpClient(new HttpClientHandler()))
                    answer = Get(client, "/");
            }
            else if (mode == "pooled")
                answer = Get(Pooled(), "/");
            else if (mode == "pooled-close")
                answer = Get(Pooled(), "/close");
            else if (mode == "runtime")
                answer = "ok " + RuntimeInformation.FrameworkDescription;
            else
                answer = "fail unknown mode " + mode;
            Console.WriteLine(answer);
        }
        return 0;
    }
}
