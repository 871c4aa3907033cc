// pgJDBC through the gateway: the scenario of test/integration/clients-pooled.test.ts. Prints one
// JSON line. pgJDBC switches a PreparedStatement to a named server-side statement (S_N) on its
// 5th execution (prepareThreshold); here from the 2nd.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class Client {
  public static void main(String[] args) throws Exception {
    String url = args[0];
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", System.getenv("PGPASSWORD"));
    props.setProperty("sslmode", "require");
    props.setProperty("prepareThreshold", "2");
    StringBuilder out = new StringBuilder("{");
    try (Connection c = DriverManager.getConnection(url, props)) {
      List<Integer> doubled = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("select ?::int * 2 as v")) {
        for (int i = 0; i < 8; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            doubled.add(rs.getInt(1));
          }
        }
      }
      out.append("\"doubled\":").append(doubled.toString().replace(" ", ""));
      c.setAutoCommit(false);
      try (PreparedStatement ins = c.prepareStatement("insert into client_rows (client) values (?)")) {
        ins.setString(1, "pgjdbc");
        ins.executeUpdate();
      }
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select count(*) from client_rows where client = 'pgjdbc'")) {
        rs.next();
        out.append(",\"inTransaction\":").append(rs.getInt(1));
      }
      c.commit();
      c.setAutoCommit(true);
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select current_user")) {
        rs.next();
        out.append(",\"user\":\"").append(rs.getString(1)).append('"');
      }
      try (Statement st = c.createStatement()) {
        st.executeQuery("select 1/0");
      } catch (SQLException e) {
        out.append(",\"error\":\"").append(e.getSQLState()).append('"');
      }
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select 42")) {
        rs.next();
        out.append(",\"after\":").append(rs.getInt(1));
      }
    }
    System.out.println(out.append('}'));
  }
}
