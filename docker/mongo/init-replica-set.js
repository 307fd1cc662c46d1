// Run once by compose's `mongo-init` (mongosh --file): initiate the one-member replica set
// and create the application user. Safe to run again: both steps check before acting.
const members = [{ _id: 0, host: "mongo:27017" }];
try {
  rs.status();
  print("replica set rs0 already initiated");
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  rs.initiate({ _id: "rs0", members });
  print("replica set rs0 initiated");
}

// Users can be created only on the primary; an election takes a few seconds.
for (let i = 0; i < 120 && !db.hello().isWritablePrimary; i++) sleep(500);
if (!db.hello().isWritablePrimary) throw new Error("no primary after 60 s");

// One user for the suite, limited to the services' own databases (each service owns one).
const roles = ["health", "registry", "education", "tourism"].map((name) => ({
  role: "readWrite",
  db: name,
}));
const password = process.env.MONGO_APP_PASSWORD;
if (!password) throw new Error("MONGO_APP_PASSWORD is not set");
const admin = db.getSiblingDB("admin");
if (admin.getUser("huimin")) {
  admin.updateUser("huimin", { pwd: password, roles });
  print("user huimin updated");
} else {
  admin.createUser({ user: "huimin", pwd: password, roles });
  print("user huimin created");
}
