// A long-running Java HTTPS client for tests/runtime_matrix.rs and
// tests/truststore.rs. It trusts what -Djavax.net.ssl.trustStore says.
//
// Usage: java TlsClient PORT, then one mode per line on stdin; one line back:
// "ok" or "fail <reason>". With a MODE after PORT: that one request, exit
// status 0 when it succeeded.
//   default  the JVM's default SSLContext, created before "ready" is printed
//            (what HttpsURLConnection and HttpClient use unless told otherwise)
//   new      a fresh SSLContext.init(null, null, null): default trust managers
//            built now, from the truststore as it is now
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;

public class TlsClient {
    public static void main(String[] args) throws Exception {
        // A new TCP and TLS connection per request: no pooled connection may
        // hide what the trust store says.
        System.setProperty("http.keepAlive", "false");
        URL url = new URL("https://127.0.0.1:" + args[0] + "/");
        SSLSocketFactory startup = SSLContext.getDefault().getSocketFactory();
        if (args.length > 1) {
            String result = request(url, startup, args[1]);
            System.out.println(result);
            System.exit(result.equals("ok") ? 0 : 1);
        }
        System.out.println("ready");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String mode;
        while ((mode = in.readLine()) != null) {
            System.out.println(request(url, startup, mode));
            System.out.flush();
        }
    }

    static String request(URL url, SSLSocketFactory startup, String mode) {
        try {
            SSLSocketFactory factory;
            if (mode.equals("default")) {
                factory = startup;
            } else if (mode.equals("new")) {
                SSLContext ctx = SSLContext.getInstance("TLS");
                ctx.init(null, null, null);
                factory = ctx.getSocketFactory();
            } else {
                return "fail unknown mode " + mode;
            }
            HttpsURLConnection conn = (HttpsURLConnection) url.openConnection();
            conn.setSSLSocketFactory(factory);
            conn.setConnectTimeout(15000);
            conn.setReadTimeout(15000);
            int code = conn.getResponseCode();
            try (InputStream body = conn.getInputStream()) {
                body.readAllBytes();
            }
            return code == 200 ? "ok" : "fail HTTP " + code;
        } catch (Exception e) {
            return "fail " + e.toString().replace('\n', ' ');
        }
    }
}
